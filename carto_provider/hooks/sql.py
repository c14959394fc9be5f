"""``CartoSQLHook``: CARTO's SQL API (queries and jobs), with the token handled.

The retry rules are :class:`~carto_provider.hooks.api.CartoAPIHook`'s. A query that times out after
CARTO's one minute would time out again, so should be a job (:meth:`CartoSQLHook.submit_job`).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any

from carto_provider.api.bounded import check_timeout
from carto_provider.api.jobs import SQL_JOB, CartoJob
from carto_provider.api.sql import (
    CARTO_DW,
    QUERY_TIMEOUT,
    SQL_API_MAX_ROWS,
    QueryParameters,
    QueryResult,
    carto_time,
    job_body,
    job_path,
    query_body,
    sql_path,
    tag_value,
)
from carto_provider.errors import QueryTooLargeError
from carto_provider.hooks.api import CartoAPIHook

log = logging.getLogger(__name__)

#: ``GET /v3/sql/jobs`` needs ``created_since``; CARTO's own client sends this date.
JOBS_LISTED_SINCE = dt.datetime(2022, 10, 1, tzinfo=dt.timezone.utc)
#: How far before its sending a looked-up creation may be listed as created (clock skew).
LOOKUP_MARGIN = dt.timedelta(minutes=5)


class CartoSQLHook(CartoAPIHook):
    """Runs SQL through CARTO: queries and jobs on any CARTO connection.

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param query_timeout: (connect, read) timeout of a synchronous query; CARTO stops at one minute.
    """

    def __init__(
        self,
        carto_conn_id: str = CartoAPIHook.default_conn_name,
        *,
        query_timeout: float | tuple[float, float] = QUERY_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(carto_conn_id, **kwargs)
        check_timeout(query_timeout, "query_timeout")
        self.query_timeout = query_timeout

    def run_query(
        self,
        sql: str,
        *,
        connection: str = CARTO_DW,
        query_parameters: QueryParameters | None = None,
        max_rows: int | None = None,
    ) -> QueryResult:
        """Run a short query (``POST /v3/sql/{connection}/query``, never cached) and return its rows.

        CARTO stops synchronous queries after one minute and returns at most 200,000 rows; a result
        of that size may be cut short, so it raises :class:`QueryTooLargeError`, as does a result
        longer than ``max_rows``. For longer or bigger work, use a job (:meth:`submit_job`).
        """
        body = query_body(sql, query_parameters)
        result = QueryResult.from_response(
            self._create(sql_path(connection, "query"), body, timeout=self.query_timeout)
        )
        count = len(result.rows)
        if count >= SQL_API_MAX_ROWS:
            raise QueryTooLargeError(
                f"The query returned {count} rows: CARTO's SQL API returns at most {SQL_API_MAX_ROWS}, "
                "so the result may be incomplete. Write it to a table with a SQL job instead."
            )
        if max_rows is not None and count > max_rows:
            raise QueryTooLargeError(
                f"The query returned {count} rows, more than max_rows={max_rows}. Add a LIMIT or an "
                "aggregation, raise max_rows, or write the result to a table with a SQL job."
            )
        return result

    def submit_job(
        self,
        sql: str,
        *,
        connection: str = CARTO_DW,
        query_parameters: QueryParameters | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> CartoJob:
        """Start a SQL job (``POST /v3/sql/{connection}/job``), tagged with ``metadata`` and a
        ``submission`` tag of its own, by which an ambiguous failure is looked up (see
        :mod:`carto_provider.hooks.api`)."""
        tags = {**(metadata or {}), "submission": secrets.token_hex(8)}
        sent = dt.datetime.now(dt.timezone.utc)

        def find() -> dict[str, Any] | None:
            wanted = {"submission": tags["submission"]}
            listed = self.list_jobs(metadata=wanted, created_since=sent - LOOKUP_MARGIN)
            return listed[0] if listed else None

        body = self._create(job_path(connection), job_body(sql, query_parameters, tags), find=find)
        job = CartoJob.from_response(SQL_JOB, body, connection=connection, words=self.status_words)
        log.info("Started %s (external id %r)", job.describe(), job.external_id)
        return job

    def get_job(self, job_id: str, *, connection: str = CARTO_DW) -> CartoJob:
        """The job's current state (``GET /v3/sql/{connection}/job/{jobId}``)."""
        return self.get(SQL_JOB, job_id, connection=connection)

    def cancel_job(self, job_id: str, *, connection: str = CARTO_DW) -> CartoJob:
        """Cancel a job (``DELETE /v3/sql/{connection}/job/{jobId}``)."""
        return self.cancel(SQL_JOB, job_id, connection=connection)

    def list_jobs(
        self, *, metadata: Mapping[str, Any] | None = None, created_since: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """The caller's SQL jobs (``GET /v3/sql/jobs``, a bare array), newest first, keeping those
        whose ``metadata`` has every given key and value (filtered here, as CARTO's own client does)."""
        since = carto_time(created_since or JOBS_LISTED_SINCE)
        body = self._call("GET", "/v3/sql/jobs", params={"created_since": since})
        items = body.get("data", body.get("jobs", [])) if isinstance(body, dict) else body
        # Compared as strings: they are sent as strings (tag_value), CARTO may store either.
        wanted = {key: tag_value(value) for key, value in (metadata or {}).items()}
        found = [
            item
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
            and isinstance(item.get("metadata") or {}, dict)
            and all(
                key in (item.get("metadata") or {}) and tag_value(item["metadata"][key]) == value
                for key, value in wanted.items()
            )
        ]
        return sorted(found, key=lambda item: str(item.get("createdAt") or ""), reverse=True)

    def wait_for_job(
        self,
        job_id: str,
        *,
        connection: str = CARTO_DW,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
    ) -> CartoJob:
        """Poll until the job ends; return it on success, raise :class:`CartoJobError` otherwise."""
        return self.wait(
            self.get_job(job_id, connection=connection),
            poll_interval=poll_interval,
            end_time=None if timeout is None else time.time() + timeout,
            cancel=(lambda: self.cancel_job(job_id, connection=connection)) if cancel_on_timeout else None,
        )
