"""``CartoImportSensor``: wait for a CARTO import started elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

from carto_provider.api.jobs import IMPORT
from carto_provider.sensors.base import CartoJobSensor


class CartoImportSensor(CartoJobSensor):
    """Succeed when a CARTO import has finished successfully; fail with CARTO's error if it failed.

    The import is only watched, never cancelled. Returns ``{"job_id", "status", "destination",
    "rows_imported", "schema"}``. Pair it with ``CartoImportOperator(wait_for_completion=False)``.

    :param job_id: the import's id. Templated.
    Other arguments: see :class:`~carto_provider.sensors.base.CartoJobSensor`.
    """

    template_fields: Sequence[str] = ("job_id",)
    kind = IMPORT

    #: Its return value: ``import_result`` without CARTO's body.
    result_shape = "import_status"
