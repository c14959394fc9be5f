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
  again, so should be a job (:meth:`CartoSQLHook.submit_job`). Imports have their own budget
  (:data:`IMPORT_RETRY`): CARTO runs 5 at once, each up to 5 GB, and advises backing off about 30 s.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from typing import Any

from carto_provider.api.bounded import check_timeout
from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.hooks.jobs import IMPORT, SQL_JOB, CartoJob, CartoJobTimeout, JobKind, JobWatch, kind_of
from carto_provider.hooks.sql_api import (
    CARTO_DW,
    QUERY_TIMEOUT,
    SQL_API_MAX_ROWS,
    QueryParameters,
    QueryResult,
    QueryTooLargeError,
    import_body,
    import_path,
    job_body,
    job_path,
    query_body,
    sql_path,
)
from carto_provider.transport import RetryPolicy, Transport

log = logging.getLogger(__name__)

#: How requests that must not run twice are retried (only when CARTO refused them; see the module doc).
AT_MOST_ONCE_RETRY = RetryPolicy(attempts=6, initial_wait=2.0, max_wait=60.0, max_retry_after=120.0)
#: How an import refused with 429 (5 running already) is retried: from 30 s, capped at 5 min, for
#: at most 30 minutes in all.
IMPORT_RETRY = RetryPolicy(
    attempts=1_000, initial_wait=30.0, max_wait=300.0, max_retry_after=300.0, budget=30 * 60.0
)
#: ``GET /v3/sql/jobs`` needs ``created_since``; CARTO's own client sends this date.
JOBS_LISTED_SINCE = dt.datetime(2022, 10, 1, tzinfo=dt.timezone.utc)


class CartoSQLHook(CartoAuthHook):
    """Runs SQL through CARTO (queries and jobs on any CARTO connection) and imports files.

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param at_most_once_retry: how job creation and queries are retried when CARTO refuses them
        with 429 or 503 (nothing else is retried for them; see the module doc).
    :param import_retry: the same for import creation (default :data:`IMPORT_RETRY`: from 30 s,
        within 30 minutes).
    :param query_timeout: (connect, read) timeout of a synchronous query; CARTO stops at one minute.
    """

    def __init__(
        self,
        carto_conn_id: str = CartoAuthHook.default_conn_name,
        *,
        at_most_once_retry: RetryPolicy = AT_MOST_ONCE_RETRY,
        import_retry: RetryPolicy = IMPORT_RETRY,
        query_timeout: float | tuple[float, float] = QUERY_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(carto_conn_id, **kwargs)
        check_timeout(query_timeout, "query_timeout")
        self.at_most_once_retry = at_most_once_retry
        self.import_retry = import_retry
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
                max_body=self.max_response_bytes,
            )
        return self._transport

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An idempotent call: every transient failure retried (see the module doc)."""
        return self.transport().request_json(method, path, **kwargs)

    def _create(self, path: str, body: Any, *, policy: RetryPolicy | None = None, timeout: Any = None) -> Any:
        """A call that must not run twice: repeated only when CARTO certainly did not act on it."""
        return self.transport().request_json(
            "POST",
            path,
            json=body,
            at_most_once=True,
            policy=policy or self.at_most_once_retry,
            timeout=timeout,
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

    def list_connections(self) -> list[dict[str, Any]]:
        """The CARTO connections visible to these credentials (``GET /v3/connections``), each with
        its ``name`` and ``provider``."""
        body = self._call("GET", "/v3/connections")
        items = body.get("data", []) if isinstance(body, dict) else body
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    # ------------------------------------------------------------------ any kind of job

    def get(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """The job's current state (a SQL job: ``GET /v3/sql/{connection}/job/{id}``; an import:
        ``GET /v3/imports/{id}``)."""
        kind = kind_of(kind)
        body = self._call("GET", kind.status_path(job_id, connection or CARTO_DW))
        return CartoJob.from_response(kind, body, connection=connection, job_id=job_id)

    def cancel(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """Cancel the job (a SQL job: ``DELETE``; an import: ``POST .../cancel``)."""
        kind = kind_of(kind)
        body = self._call(kind.cancel_method, kind.cancel_path(job_id, connection or CARTO_DW))
        log.info("Asked CARTO to cancel %s", kind.describe(job_id, connection))
        return CartoJob.from_response(kind, body, connection=connection, job_id=job_id)

    def wait(
        self,
        job: CartoJob,
        *,
        poll_interval: float = 10.0,
        end_time: float | None = None,
        cancel: Any = None,
    ) -> CartoJob:
        """Poll until the job ends; return it on success, raise :class:`CartoJobError` otherwise.

        At ``end_time`` (epoch seconds) the wait gives up: ``cancel()`` is called when given, and
        :class:`CartoJobTimeout` names the job's last status.
        """
        watch = JobWatch(poll_interval, end_time)
        while (delay := watch.next_delay(job)) is not None:
            time.sleep(delay)
            job = self.get(job.kind, job.job_id, connection=job.connection)
        if watch.timed_out:
            if cancel is not None:
                cancel()
            raise CartoJobTimeout(JobWatch.timeout_message(job, cancelled=cancel is not None))
        return job.check()

    # ------------------------------------------------------------------ SQL API: jobs

    def submit_job(
        self,
        sql: str,
        *,
        connection: str = CARTO_DW,
        query_parameters: QueryParameters | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> CartoJob:
        """Start a SQL job (``POST /v3/sql/{connection}/job``), tagged with ``metadata``."""
        body = self._create(job_path(connection), job_body(sql, query_parameters, metadata))
        job = CartoJob.from_response(SQL_JOB, body, connection=connection)
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
        since = (created_since or JOBS_LISTED_SINCE).astimezone(dt.timezone.utc)
        body = self._call("GET", "/v3/sql/jobs", params={"created_since": since.isoformat()})
        items = body.get("data", body.get("jobs", [])) if isinstance(body, dict) else body
        wanted = dict(metadata or {})
        found = [
            item
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
            and all((item.get("metadata") or {}).get(key) == value for key, value in wanted.items())
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

    # ------------------------------------------------------------------ Imports API

    def create_import(self, url: str, destination: str, **options: Any) -> CartoJob:
        """Start importing the file at ``url`` into the table ``destination`` (``POST /v3/imports``).

        ``options``: ``connection`` (``carto_dw``), ``overwrite`` (False), ``autoguessing`` (True) and
        ``schema`` (columns ``{"name", "type"}``; needs ``autoguessing=False``, as CARTO ignores it
        otherwise). CARTO runs at most 5 imports at once and answers 429 beyond; that is waited out
        here (``import_retry``).
        """
        connection = options.setdefault("connection", CARTO_DW)
        body = import_body(url=url, destination=destination, **options)
        job = CartoJob.from_response(
            IMPORT, self._create(import_path(), body, policy=self.import_retry), connection=connection
        )
        log.info("Started %s into %s (status %r)", job.describe(), destination, job.status)
        return job

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
