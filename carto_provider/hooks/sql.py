"""``CartoSQLHook``: CARTO's SQL API (queries and jobs) and Imports API, with the token handled.

Built on :class:`~carto_provider.hooks.carto.CartoAuthHook`: every call carries a token from the shared
cache, a 401 refreshes it once and retries once, and CARTO's ``error`` ends up in the exception.

Which calls are retried, and why:

* Reads and cancellations (``GET`` a job or import, ``DELETE`` a job, ``POST .../cancel``) repeat
  harmlessly, so every transient failure is retried (connection errors, timeouts, 429, 5xx).
* Creating a job or an import, and a synchronous query, must not run twice. They are retried only
  when CARTO certainly did not act: the connection could not be set up (the request never left),
  429 (rate limited; for imports: more than 5 running at once) and 503 (not accepted), honouring
  ``Retry-After``. A timeout or another 5xx is not retried, because the job may exist or the query
  may have run; the error says so. A query that times out after CARTO's one minute would time out
  again, so should be a job (:meth:`CartoSQLHook.submit_job`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.hooks.sql_api import (
    CARTO_DW,
    QUERY_TIMEOUT,
    SQL_API_MAX_ROWS,
    CartoJob,
    CartoJobTimeout,
    QueryParameters,
    QueryResult,
    QueryTooLargeError,
    import_body,
    import_path,
    job_body,
    job_path,
    poll_delays,
    query_body,
    sql_path,
)
from carto_provider.transport import RetryPolicy, Transport

log = logging.getLogger(__name__)

SQL_JOB, IMPORT = "SQL job", "import"
#: How requests that must not run twice are retried (only when CARTO refused them; see the module doc).
AT_MOST_ONCE_RETRY = RetryPolicy(attempts=6, initial_wait=2.0, max_wait=60.0, max_retry_after=120.0)


class CartoSQLHook(CartoAuthHook):
    """Runs SQL through CARTO (queries and jobs on any CARTO connection) and imports files.

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param at_most_once_retry: how job/import creation and queries are retried when CARTO refuses
        them with 429 or 503 (nothing else is retried for them; see the module doc).
    :param query_timeout: (connect, read) timeout of a synchronous query; CARTO stops at one minute.
    """

    def __init__(
        self,
        carto_conn_id: str = CartoAuthHook.default_conn_name,
        *,
        at_most_once_retry: RetryPolicy = AT_MOST_ONCE_RETRY,
        query_timeout: float | tuple[float, float] = QUERY_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(carto_conn_id, **kwargs)
        self.at_most_once_retry = at_most_once_retry
        self.query_timeout = query_timeout
        self._transport: Transport | None = None

    # ------------------------------------------------------------------ transport

    def transport(self) -> Transport:
        """This hook's one HTTP transport (a single ``httpx.Client``), with the connection's tokens."""
        if self._transport is None:
            auth = self.get_auth()
            self._transport = Transport(
                auth.get_api_base_url(),
                tokens=lambda rejected: auth.get_token(rejected=rejected).value,
                policy=self.retry_policy,
                timeout=self.timeout,
            )
        return self._transport

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An idempotent call: every transient failure retried (see the module doc)."""
        return self.transport().request_json(method, path, **kwargs)

    def _call_at_most_once(self, method: str, path: str, *, json: Any, timeout: Any = None) -> Any:
        """A call that must not run twice: repeated only when CARTO certainly did not act on it."""
        return self.transport().request_json(
            method, path, json=json, at_most_once=True, policy=self.at_most_once_retry, timeout=timeout
        )

    # ------------------------------------------------------------------ SQL API: queries

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
        body = self._call_at_most_once(
            "POST",
            sql_path(connection, "query"),
            json=query_body(sql, query_parameters),
            timeout=self.query_timeout,
        )
        result = QueryResult.from_response(body)
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

    # ------------------------------------------------------------------ SQL API: jobs

    def submit_job(
        self, sql: str, *, connection: str = CARTO_DW, query_parameters: QueryParameters | None = None
    ) -> CartoJob:
        """Start a SQL job (``POST /v3/sql/{connection}/job``); it runs on CARTO's side."""
        body = self._call_at_most_once("POST", job_path(connection), json=job_body(sql, query_parameters))
        job = CartoJob.from_response(SQL_JOB, body, connection=connection)
        log.info("Started %s (status %r, external id %r)", job.describe(), job.status, job.external_id)
        return job

    def get_job(self, job_id: str, *, connection: str = CARTO_DW) -> CartoJob:
        """The job's current state (``GET /v3/sql/{connection}/job/{jobId}``)."""
        body = self._call("GET", job_path(connection, job_id))
        return CartoJob.from_response(SQL_JOB, body, connection=connection, job_id=job_id)

    def cancel_job(self, job_id: str, *, connection: str = CARTO_DW) -> CartoJob:
        """Cancel a job (``DELETE /v3/sql/{connection}/job/{jobId}``)."""
        body = self._call("DELETE", job_path(connection, job_id))
        log.info("Asked CARTO to cancel SQL job %r on connection %r", job_id, connection)
        return CartoJob.from_response(SQL_JOB, body, connection=connection, job_id=job_id)

    def list_jobs(self) -> list[dict[str, Any]]:
        """The caller's SQL jobs (``GET /v3/sql/jobs``), as CARTO lists them."""
        body = self._call("GET", "/v3/sql/jobs")
        items = body.get("data", body.get("jobs", [])) if isinstance(body, dict) else body
        return list(items) if isinstance(items, list) else []

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
        return self._wait(
            lambda: self.get_job(job_id, connection=connection),
            (lambda: self.cancel_job(job_id, connection=connection)) if cancel_on_timeout else None,
            poll_interval,
            timeout,
        )

    # ------------------------------------------------------------------ Imports API

    def create_import(
        self,
        url: str,
        destination: str,
        *,
        connection: str = CARTO_DW,
        overwrite: bool = False,
        autoguessing: bool = True,
    ) -> CartoJob:
        """Start importing the file at ``url`` into the table ``destination`` (``POST /v3/imports``).

        CARTO runs at most 5 imports at once and answers 429 beyond; that is waited out here.
        """
        body = import_body(
            url=url,
            destination=destination,
            connection=connection,
            overwrite=overwrite,
            autoguessing=autoguessing,
        )
        job = CartoJob.from_response(
            IMPORT, self._call_at_most_once("POST", import_path(), json=body), connection=connection
        )
        log.info("Started %s into %s (status %r)", job.describe(), destination, job.status)
        return job

    def get_import(self, job_id: str) -> CartoJob:
        """The import's current state (``GET /v3/imports/{jobId}``)."""
        return CartoJob.from_response(IMPORT, self._call("GET", import_path(job_id)), job_id=job_id)

    def cancel_import(self, job_id: str) -> CartoJob:
        """Cancel an import (``POST /v3/imports/{jobId}/cancel``)."""
        body = self._call("POST", import_path(job_id, "cancel"))
        log.info("Asked CARTO to cancel import %r", job_id)
        return CartoJob.from_response(IMPORT, body, job_id=job_id)

    def list_imports(self) -> list[dict[str, Any]]:
        """The caller's imports (``GET /v3/imports``), as CARTO lists them."""
        body = self._call("GET", import_path())
        items = body.get("data", body.get("imports", [])) if isinstance(body, dict) else body
        return list(items) if isinstance(items, list) else []

    def wait_for_import(
        self,
        job_id: str,
        *,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        cancel_on_timeout: bool = True,
    ) -> CartoJob:
        """Poll until the import ends; return it on success, raise :class:`CartoJobError` otherwise."""
        return self._wait(
            lambda: self.get_import(job_id),
            (lambda: self.cancel_import(job_id)) if cancel_on_timeout else None,
            poll_interval,
            timeout,
        )

    # ------------------------------------------------------------------ waiting

    @staticmethod
    def _wait(
        fetch: Callable[[], CartoJob],
        cancel: Callable[[], Any] | None,
        poll_interval: float,
        timeout: float | None,
    ) -> CartoJob:
        deadline = None if timeout is None else time.monotonic() + timeout
        delays = poll_delays(poll_interval)
        while True:
            job = fetch()
            if job.done:
                log.info("%s ended with status %r", job.describe(), job.status)
                return job.check()
            delay = next(delays)
            if deadline is not None and time.monotonic() + delay > deadline:
                if cancel is not None:
                    cancel()
                raise CartoJobTimeout(
                    f"{job.describe()} was still {job.status or 'running'!r} after {timeout:g} s"
                    + ("; it has been cancelled." if cancel is not None else ".")
                )
            log.debug("%s is %r; next check in %.1f s", job.describe(), job.status, delay)
            time.sleep(delay)
