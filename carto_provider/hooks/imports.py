"""``CartoImportsHook``: CARTO's Imports API (a file at a URL into a warehouse table).

Import creation is at-most-once (:class:`~carto_provider.hooks.api.CartoAPIHook`), with its own
budget for 429 answers (:data:`IMPORT_RETRY`): CARTO runs 5 imports at once, each up to 5 GB, and
advises backing off about 30 s.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from typing import Any

from carto_provider.api.import_preview import PREVIEW_PATH, ImportPreview, preview_body
from carto_provider.api.imports import import_body, import_path
from carto_provider.api.jobs import IMPORT, CartoJob
from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.api.sql import CARTO_DW
from carto_provider.errors import CartoAPIError
from carto_provider.hooks.api import CartoAPIHook

log = logging.getLogger(__name__)

#: How an import refused with 429 (5 running already) is retried: from 30 s, capped at 2 min, for at
#: most 5 minutes in all, also for a deferrable task (creating the import happens in the worker). A
#: longer queue fails the try with the 429; the task's ``retries``/``retry_delay`` wait outside a slot.
IMPORT_RETRY = CartoRetryPolicy(
    attempts=1_000, initial_wait=30.0, max_wait=120.0, max_retry_after=120.0, budget=300.0
)
#: How far before its sending a looked-up import may be listed as created (clock skew).
LOOKUP_MARGIN = dt.timedelta(minutes=5)


class CartoImportsHook(CartoAPIHook):
    """Imports files into warehouse tables through CARTO's Imports API.

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param import_retry: how import creation is retried when CARTO refuses it with 429 or 503
        (default :data:`IMPORT_RETRY`: from 30 s, within 5 minutes).
    """

    def __init__(
        self,
        carto_conn_id: str = CartoAPIHook.default_conn_name,
        *,
        import_retry: CartoRetryPolicy = IMPORT_RETRY,
        **kwargs: Any,
    ) -> None:
        super().__init__(carto_conn_id, **kwargs)
        self.import_retry = import_retry

    def create_import(self, url: str, destination: str, **options: Any) -> CartoJob:
        """Start importing the file at ``url`` into the table ``destination`` (``POST /v3/imports``).

        ``options``: ``connection`` (``carto_dw``), ``overwrite`` (False), ``autoguessing`` (True) and
        ``schema`` (columns ``{"name", "type"}``; needs ``autoguessing=False``, as CARTO ignores it
        otherwise). CARTO runs at most 5 imports at once and answers 429 beyond; that is waited out
        here for at most ``import_retry.budget`` (5 minutes by default), then the 429 is raised.
        """
        connection = options.setdefault("connection", CARTO_DW)
        body = import_body(url=url, destination=destination, **options)
        sent = dt.datetime.now(dt.timezone.utc) - LOOKUP_MARGIN

        def find() -> dict[str, Any] | None:  # after an ambiguous failure (hooks.api)
            return self.find_import(connection, url, destination, since=sent)

        try:
            created = self._create(import_path(), body, policy=self.import_retry, find=find)
        except CartoAPIError as exc:
            if exc.status != 429:
                raise
            raise CartoAPIError(
                f"{exc} Still refused after {self.import_retry.budget or 0:g} s of retries (import_retry); "
                "the task's retries (retries, retry_delay) try again later without holding a worker.",
                status=exc.status,
                error=exc.error,
                url=exc.url,
            ) from None
        job = CartoJob.from_response(IMPORT, created, connection=connection, words=self.status_words)
        log.info("Started %s into %s (status %r)", job.describe(), destination, job.status)
        return job

    def preview_import(
        self, url: str, *, connection: str = CARTO_DW, destination: str | None = None
    ) -> ImportPreview:
        """What CARTO would create from the file at ``url`` (``POST /v3/imports/preview``): its
        columns, to adjust and pass back as ``create_import(..., autoguessing=False, schema=...)``."""
        body = preview_body(url, connection, destination)
        # A preview creates nothing, so it is retried like a read.
        preview = ImportPreview.from_response(self._call("POST", PREVIEW_PATH, json=body))
        log.info("CARTO previews %d column(s): %s", len(preview.schema), preview.schema)
        return preview

    def get_import(self, job_id: str) -> CartoJob:
        """The import's current state (``GET /v3/imports/{jobId}``)."""
        return self.get(IMPORT, job_id)

    def cancel_import(self, job_id: str) -> CartoJob:
        """Cancel an import (``POST /v3/imports/{jobId}/cancel``)."""
        return self.cancel(IMPORT, job_id)

    def list_imports(self) -> list[dict[str, Any]]:
        """The caller's imports (``GET /v3/imports``), as CARTO lists them."""
        body = self._call("GET", import_path())
        items = body.get("data", body.get("imports", [])) if isinstance(body, dict) else body
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def find_import(
        self, connection: str, url: str, destination: str, *, since: dt.datetime
    ) -> dict[str, Any] | None:
        """The newest import of ``url`` into ``destination`` created since ``since``, or None."""
        mine = [
            item
            for item in self.list_imports()
            if (item.get("connection", connection), item.get("url"), item.get("destination"))
            == (connection, url, destination)
            and (_created_at(item) or since) >= since
        ]
        mine.sort(key=lambda item: str(item.get("createdAt") or ""), reverse=True)
        return mine[0] if mine else None

    def wait_for_import(
        self,
        job_id: str,
        *,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
    ) -> CartoJob:
        """Poll until the import ends; return it on success, raise :class:`CartoJobError` otherwise."""
        return self.wait(
            self.get_import(job_id),
            poll_interval=poll_interval,
            end_time=None if timeout is None else time.time() + timeout,
            cancel=(lambda: self.cancel_import(job_id)) if cancel_on_timeout else None,
        )


def _created_at(item: Mapping[str, Any]) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(item.get("createdAt")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
