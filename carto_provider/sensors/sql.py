"""``CartoSQLJobSensor``: wait for a CARTO SQL job (or Workflow run) started elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from carto_provider.api.jobs import SQL_JOB
from carto_provider.api.sql import CARTO_DW
from carto_provider.sensors.base import CartoJobSensor


class CartoSQLJobSensor(CartoJobSensor):
    """Succeed when a CARTO SQL job has finished successfully; fail with CARTO's error if it failed.

    The job is only watched, never cancelled. Returns the job's ids. Pair it with an operator run
    with ``wait_for_completion=False``, or a job started anywhere else.

    :param job_id: CARTO's job id. Templated.
    :param connection: the CARTO connection the job runs on (``carto_dw`` by default). Templated.
    Other arguments: see :class:`~carto_provider.sensors.base.CartoJobSensor`.
    """

    template_fields: Sequence[str] = ("job_id", "connection")
    kind = SQL_JOB

    def __init__(self, *, connection: str = CARTO_DW, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connection = connection
