"""``CartoImportOperator``: import a file from a URL into a warehouse table through CARTO's Imports API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import mask_secret

from carto_provider.auth.http import redact_url
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.hooks.sql_api import CARTO_DW, CartoJob
from carto_provider.operators.base import CartoJobOperator
from carto_provider.triggers.base import CartoJobTrigger
from carto_provider.triggers.imports import CartoImportTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


def mask_url_credentials(url: str) -> None:
    """Mask what a signed or authenticated URL carries (its query string and password) in task logs."""
    parts = urlsplit(url)
    for secret in (parts.query, parts.password):
        if secret:
            mask_secret(secret)


class CartoImportOperator(CartoJobOperator):
    """Import a file (CSV, GeoJSON, GeoPackage, KML/KMZ, TAB, zipped Shapefile, GeoParquet) from a
    public URL into a table, and wait for the import.

    Returns ``{"job_id", "status", "destination", "rows_imported", "schema", "body"}`` where ``body``
    is CARTO's last answer (without the URL, which may be signed). CARTO runs at most 5 imports at
    once; the hook waits out its 429 answers.

    :param url: where CARTO downloads the file from (must be reachable by CARTO). Templated. A
        signed URL's query string is masked in task logs and never returned.
    :param destination: the fully-qualified table, e.g. ``carto-dw-ac-xxxx.shared.stores``. Templated.
    :param connection: the CARTO connection of the destination (``carto_dw`` by default). Templated.
    :param overwrite: replace the table if it exists (otherwise the import fails).
    :param autoguessing: let CARTO guess column types (``False`` keeps text columns).
    Other arguments: see :class:`~carto_provider.operators.base.CartoJobOperator`.
    """

    template_fields: Sequence[str] = ("url", "destination", "connection")

    def __init__(
        self,
        *,
        url: str,
        destination: str,
        connection: str = CARTO_DW,
        overwrite: bool = False,
        autoguessing: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.destination = destination
        self.connection = connection
        self.overwrite = overwrite
        self.autoguessing = autoguessing

    def execute(self, context: Context) -> Any:
        mask_url_credentials(self.url)
        self.log.info("Importing %s into %s", redact_url(self.url), self.destination)
        return super().execute(context)

    def submit(self, hook: CartoSQLHook) -> CartoJob:
        return hook.create_import(
            self.url,
            self.destination,
            connection=self.connection,
            overwrite=self.overwrite,
            autoguessing=self.autoguessing,
        )

    def wait(self, hook: CartoSQLHook, job: CartoJob, poll_interval: float) -> CartoJob:
        return hook.wait_for_import(job.job_id, poll_interval=poll_interval, cancel_on_timeout=False)

    def cancel(self, hook: CartoSQLHook, job: CartoJob) -> None:
        hook.cancel_import(job.job_id)

    def trigger(self, job: CartoJob, **kwargs: Any) -> CartoJobTrigger:
        return CartoImportTrigger(job_id=job.job_id, **kwargs)

    def result(self, job: CartoJob) -> dict[str, Any]:
        body = job.summary()["body"]
        return {
            "job_id": job.job_id,
            "status": job.status,
            "destination": body.get("destination", self.destination),
            "rows_imported": body.get("rowsImported"),
            "schema": body.get("schema"),
            "body": body,
        }
