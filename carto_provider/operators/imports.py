"""``CartoImportOperator``: import a file from a URL into a warehouse table through CARTO's Imports API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import mask_secret

from carto_provider.api.identity import TaskIdentity, created_at
from carto_provider.api.import_preview import SchemaAdjustment
from carto_provider.api.jobs import IMPORT, CartoJob
from carto_provider.api.responses import redact_url
from carto_provider.api.sql import CARTO_DW
from carto_provider.assets import default_outlets
from carto_provider.hooks.imports import CartoImportsHook
from carto_provider.operators.base import CartoJobOperator

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
    :param autoguessing: let CARTO guess column types (``False`` keeps text columns, or uses ``schema``).
    :param schema: the columns to create, ``[{"name": ..., "type": ...}]`` as CARTO's import preview
        shows them; CARTO honours it only with ``autoguessing=False``, so it requires that. Templated.
    :param preview: preview the file first (``POST /v3/imports/preview``), then import with the
        previewed columns (after ``schema_adjustment``) and ``autoguessing`` off, as CARTO's docs advise.
    :param schema_adjustment: with ``preview``: ``{column: type}`` overrides, or a function of the
        previewed columns returning the columns to import. The columns used are in the result's ``schema``.
    :param outlets: default: the destination as the asset ``carto://{connection}/{destination}``
        (:mod:`carto_provider.assets`), unless ``destination`` or ``connection`` is templated.
    Other arguments: see :class:`~carto_provider.operators.base.CartoJobOperator`.
    """

    template_fields: Sequence[str] = ("url", "destination", "connection", "schema")
    kind = IMPORT
    hook_class = CartoImportsHook

    def __init__(
        self,
        *,
        url: str,
        destination: str,
        connection: str = CARTO_DW,
        schema: Sequence[Mapping[str, str]] | None = None,
        overwrite: bool = False,
        autoguessing: bool = True,
        preview: bool = False,
        schema_adjustment: SchemaAdjustment | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", default_outlets(destination, connection))  # carto_provider.assets
        super().__init__(**kwargs)
        if schema is not None and autoguessing:
            raise ValueError(
                f"{kwargs.get('task_id')}: CARTO ignores an import schema while autoguessing is on; "
                "pass autoguessing=False with it."
            )
        if preview and schema is not None:
            raise ValueError(f"{kwargs.get('task_id')}: pass schema or preview=True, not both.")
        if schema_adjustment is not None and not preview:
            raise ValueError(f"{kwargs.get('task_id')}: schema_adjustment needs preview=True.")
        self.preview, self.schema_adjustment = preview, schema_adjustment
        self.url, self.destination, self.connection = url, destination, connection
        self.schema, self.overwrite, self.autoguessing = schema, overwrite, autoguessing

    def execute(self, context: Context) -> Any:
        mask_url_credentials(self.url)
        self.log.info("Importing %s into %s", redact_url(self.url), self.destination)
        return super().execute(context)

    def submit(self, hook: CartoImportsHook, identity: TaskIdentity | None) -> CartoJob:
        schema, autoguessing = self.schema, self.autoguessing
        if self.preview:
            previewed = hook.preview_import(
                self.url, connection=self.connection, destination=self.destination
            )
            schema, autoguessing = previewed.adjusted(self.schema_adjustment), False
            self.log.info("Importing with the previewed columns (autoguessing off): %s", schema)
        return hook.create_import(
            self.url,
            self.destination,
            connection=self.connection,
            overwrite=self.overwrite,
            autoguessing=autoguessing,
            schema=schema,
        )

    def find_previous(self, hook: CartoImportsHook, identity: TaskIdentity) -> CartoJob | None:
        kept = identity.recalled(IMPORT)
        if kept is not None:
            return hook.get_import(kept)
        if identity.store is not None or identity.run_started is None:
            return None  # Airflow 3.3+: no id kept means no import started
        # Older Airflow keeps nothing across tries (XComs are cleared): find a running import of
        # the same file into the same table, created since this run started.
        since = identity.run_started - dt.timedelta(minutes=1)
        mine = [
            item
            for item in hook.list_imports()
            if (item.get("connection"), item.get("url"), item.get("destination"))
            == (self.connection, self.url, self.destination)
            and (created_at(item) or since) > since
        ]
        mine.sort(key=lambda item: str(item.get("createdAt") or ""), reverse=True)
        job_id = (mine[0].get("jobId") or mine[0].get("id")) if mine else None
        previous = hook.get_import(str(job_id)) if job_id else None
        return previous if previous is not None and not previous.done else None

    #: Its return value: ``import_result`` (the trigger builds it too, see ``end_from_trigger``).
    result_shape = "import"

    def result_fields(self) -> dict[str, Any]:
        return {"destination": self.destination}
