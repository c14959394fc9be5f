"""``CartoActivityDataOperator``: export a date range of CARTO Activity Data into a table.

The export is a job on the existing job model (polling, or deferred with ``deferrable=True``); once it
succeeds its files (signed download URLs, never logged nor returned) are imported into
``destination`` through the Imports API, waited for by polling.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from carto_provider.api.jobs import ACTIVITY, CartoJob
from carto_provider.api.sql import CARTO_DW
from carto_provider.hooks.activity import CartoActivityHook
from carto_provider.hooks.imports import CartoImportsHook
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.operators.base import CartoJobOperator
from carto_provider.operators.imports import mask_url_credentials
from carto_provider.operators.lds import checked_table

if TYPE_CHECKING:
    from carto_provider.api.identity import TaskIdentity


def _day(value: dt.date | str) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value).strip()[:10])


class CartoActivityDataOperator(CartoJobOperator):
    """Export CARTO Activity Data for ``from_date`` to ``to_date`` (inclusive, under 60 days) and
    import it into ``destination``; returns ``{"job_id", "status", "destination", "files",
    "rows_imported"}``. Needs an ``m2m`` connection of an Admin or Superadmin user.

    :param from_date: first day, a date or ``YYYY-MM-DD`` (e.g. ``"{{ ds }}"``). Templated.
    :param to_date: last day. Templated.
    :param destination: ``project.dataset.table`` the export is imported into (replaced each run);
        None: export only (the files stay on CARTO's side). Templated.
    :param category: ``activity``, ``apiUsage``, ``userList`` or ``groupList`` (CARTO's CLI words).
    :param connection: the CARTO connection of ``destination`` (``carto_dw``).
    Other arguments: see :class:`~carto_provider.operators.base.CartoJobOperator`.
    """

    template_fields: Sequence[str] = ("from_date", "to_date", "destination", "category")
    kind = ACTIVITY
    hook_class = CartoActivityHook

    def __init__(
        self,
        *,
        from_date: dt.date | str,
        to_date: dt.date | str,
        destination: str | None = None,
        category: str = "activity",
        connection: str = CARTO_DW,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.from_date, self.to_date, self.destination = from_date, to_date, destination
        self.category, self.connection = category, connection

    def submit(self, hook: CartoActivityHook, identity: TaskIdentity | None) -> CartoJob:
        return hook.create_activity_export(_day(self.from_date), _day(self.to_date), category=self.category)

    def find_previous(self, hook: CartoActivityHook, identity: TaskIdentity) -> CartoJob | None:
        kept = identity.recalled(ACTIVITY)
        return hook.get(ACTIVITY, kept) if kept is not None else None

    def result(self, job: CartoJob) -> dict[str, Any]:
        out: dict[str, Any] = {**job.ids(), "destination": None, "files": 0, "rows_imported": None}
        if not self.destination or job.done is False:
            return out
        table = checked_table(self.destination)
        urls = CartoActivityHook(self.carto_conn_id).activity_download_urls(job.job_id)
        imports, sql = CartoImportsHook(self.carto_conn_id), CartoSQLHook(self.carto_conn_id)
        for url in urls:
            mask_url_credentials(url)
        parts = [table] if len(urls) == 1 else [f"{table}_part{i}" for i in range(len(urls))]
        imported = 0
        for url, part in zip(urls, parts, strict=True):
            started = imports.create_import(url, part, connection=self.connection, overwrite=True)
            done = imports.wait_for_import(
                started.job_id, poll_interval=self.poll_interval or 2.0, timeout=3600
            )
            imported += int(done.body.get("rowsImported") or 0)
        if len(parts) > 1:
            # The part names come from checked_table: no injection.
            union = " UNION ALL ".join(f"SELECT * FROM `{p}`" for p in parts)  # noqa: S608
            merge = sql.submit_job(
                f"CREATE OR REPLACE TABLE `{table}` AS {union}", connection=self.connection
            )
            sql.wait_for_job(merge.job_id, connection=self.connection, timeout=3600)
        self.log.info("Imported %d activity row(s) from %d file(s) into %s", imported, len(urls), table)
        return {**out, "destination": table, "files": len(urls), "rows_imported": imported}
