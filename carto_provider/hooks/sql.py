"""``CartoSQLHook``: CARTO's SQL API (queries and jobs) and Imports API, with the token handled.

Built on :class:`~carto_provider.hooks.carto.CartoAuthHook`: every call carries a token from the shared
cache, a 401 refreshes it once and retries once, and CARTO's ``error`` ends up in the exception.

Which calls are retried, and why:

* Reads and cancellations (``GET`` a job or import, ``DELETE`` a job, ``POST .../cancel``) repeat
  harmlessly, so every transient failure is retried (connection errors, timeouts, 429, 5xx).
* Creating a job or an import, and a synchronous query, must not run twice. They are retried only
  when CARTO certainly did not act: the connection could not be set up (the request never left)
  and 429 (rate limited; for imports: more than 5 running at once), honouring ``Retry-After``.
  A 5xx or a timeout after sending is ambiguous (a CDN may answer 503 after CARTO received the
  POST): a job or import is then looked up first (a SQL job by its ``submission`` tag in
  ``GET /v3/sql/jobs``, an import by connection, URL and destination in ``GET /v3/imports``) and
  sent again only when not found, once (CARTO's field notes: "503: back off, retry once"). A
  query cannot be looked up, so it is not repeated; the error says so. A query that times out
  after CARTO's one minute would time out again, so should be a job
  (:meth:`CartoSQLHook.submit_job`). Imports have their own budget (:data:`IMPORT_RETRY`): CARTO
  runs 5 at once, each up to 5 GB, and advises backing off about 30 s.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from carto_provider.errors import CartoAPIError
from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.hooks.jobs import (
    IMPORT,
    SQL_JOB,
    UNKNOWN_STATUS_PATIENCE,
    CartoJob,
    CartoJobTimeout,
    JobKind,
    JobWatch,
    kind_of,
    status_words,
)
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
    tag_value,
)
from carto_provider.retry import AMBIGUOUS_STATUS
from carto_provider.transport import CLIENT_PARAMS, RetryPolicy, Transport

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
#: How far before its sending a looked-up creation may be listed as created (clock skew).
LOOKUP_MARGIN = dt.timedelta(minutes=5)
#: The most pages of ``GET /v3/connections`` followed.
MAX_PAGES = 100


def carto_time(when: dt.datetime) -> str:
    """``2022-10-01T00:00:00.000Z``: UTC with milliseconds and ``Z``, as @carto/ps-services 1.1.1
    sends ``created_since`` (``dist/ps-services.es.js`` listJobs)."""
    utc = when.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def job_settings(words: Mapping[str, str] | None, patience: float | None) -> tuple[dict[str, str], float]:
    """The status vocabulary (``[carto] status_words`` JSON, then ``words``) and the patience with
    an unknown word (``patience``, else ``[carto] unknown_status_patience``, else 600 s)."""
    from airflow.providers.common.compat.sdk import conf

    configured = status_words(conf.get("carto", "status_words", fallback="") or "")
    merged = {**configured, **status_words(words or {})}
    if patience is None:
        patience = conf.getfloat("carto", "unknown_status_patience", fallback=UNKNOWN_STATUS_PATIENCE)
    return merged, float(patience)


def is_ambiguous(exc: CartoAPIError) -> bool:
    """Whether a failed creation may have happened anyway (a 5xx, or no answer after sending)."""
    return exc.status is None or exc.status in AMBIGUOUS_STATUS or exc.status >= 500


class CartoSQLHook(CartoAuthHook):
    """Runs SQL through CARTO (queries and jobs on any CARTO connection) and imports files.

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param at_most_once_retry: how job creation and queries are retried when CARTO refuses them
        with 429 or 503 (nothing else is retried for them; see the module doc).
    :param import_retry: the same for import creation (default :data:`IMPORT_RETRY`: from 30 s,
        within 30 minutes).
    :param query_timeout: (connect, read) timeout of a synchronous query; CARTO stops at one minute.
    :param status_words: more job status words, word -> ``success``/``failed``/``cancelled``/
        ``running`` (added to those of :mod:`carto_provider.hooks.jobs` and ``[carto] status_words``).
    :param unknown_status_patience: seconds an unknown status word is polled on (default
        ``[carto] unknown_status_patience``, 600 s).
    """

    def __init__(
        self,
        carto_conn_id: str = CartoAuthHook.default_conn_name,
        *,
        at_most_once_retry: RetryPolicy = AT_MOST_ONCE_RETRY,
        import_retry: RetryPolicy = IMPORT_RETRY,
        query_timeout: float | tuple[float, float] = QUERY_TIMEOUT,
        status_words: Mapping[str, str] | None = None,
        unknown_status_patience: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(carto_conn_id, **kwargs)
        self.at_most_once_retry = at_most_once_retry
        self.import_retry = import_retry
        self.query_timeout = query_timeout
        self.status_words, self.unknown_status_patience = job_settings(status_words, unknown_status_patience)
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
                params=CLIENT_PARAMS,
            )
        return self._transport

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An idempotent call: every transient failure retried (see the module doc)."""
        return self.transport().request_json(method, path, **kwargs)

    def _create(
        self,
        path: str,
        body: Any,
        *,
        policy: RetryPolicy | None = None,
        timeout: Any = None,
        find: Callable[[], Any] | None = None,
    ) -> Any:
        """A call that must not run twice: repeated only when CARTO certainly did not act on it, or
        (with ``find``, which returns what the call created or None) after an ambiguous failure
        when ``find`` shows nothing was created."""
        policy = policy or self.at_most_once_retry
        for resubmit in (False, True):
            try:
                return self.transport().request_json(
                    "POST", path, json=body, at_most_once=True, policy=policy, timeout=timeout
                )
            except CartoAPIError as exc:
                if find is None or resubmit or not is_ambiguous(exc):
                    raise
                log.warning("Creating %s may have worked (%s): looking for it before resending", path, exc)
                time.sleep(policy.initial_wait)
                found = find()
                if found is not None:
                    log.warning("CARTO had created it: using it")
                    return found
        raise AssertionError("unreachable")

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
        its ``name`` and provider (read it with :func:`~carto_provider.hooks.sql_api.connection_provider`).

        CARTO publishes no paging for this list (its CLI prints a bare array); a paged reply
        (``{"data": [...]}`` with a ``next`` path, or ``page``/``pageSize``/``total``, the Named
        Sources convention) is followed page by page.
        """
        found: list[dict[str, Any]] = []
        body = self._call("GET", "/v3/connections")
        for _ in range(MAX_PAGES):
            items = body.get("data", []) if isinstance(body, dict) else body
            page = [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
            found.extend(page)
            following = _next_page(body, len(found), len(page))
            if following is None:
                break
            body = self._call("GET", "/v3/connections", params=following)
        return found

    # ------------------------------------------------------------------ any kind of job

    def get(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """The job's current state (a SQL job: ``GET /v3/sql/{connection}/job/{id}``; an import:
        ``GET /v3/imports/{id}``)."""
        kind = kind_of(kind)
        body = self._call("GET", kind.status_path(job_id, connection or CARTO_DW))
        return CartoJob.from_response(
            kind, body, connection=connection, job_id=job_id, words=self.status_words
        )

    def cancel(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """Cancel the job (a SQL job: ``DELETE``; an import: ``POST .../cancel``). A job that had
        already ended may be refused with 400 or 409 (as CARTO's Activity Data jobs are): it is then
        read and returned as it ended, so its real outcome is reported, not the refusal."""
        kind = kind_of(kind)
        try:
            body = self._call(kind.cancel_method, kind.cancel_path(job_id, connection or CARTO_DW))
        except CartoAPIError as exc:
            if exc.status not in (400, 409):
                raise
            job = self.get(kind, job_id, connection=connection)
            if not job.done:
                raise
            log.info("CARTO did not cancel %s: it had already ended %r", job.describe(), job.status)
            return job
        log.info("Asked CARTO to cancel %s", kind.describe(job_id, connection))
        return CartoJob.from_response(
            kind, body, connection=connection, job_id=job_id, words=self.status_words
        )

    def wait(
        self,
        job: CartoJob,
        *,
        poll_interval: float = 10.0,
        end_time: float | None = None,
        cancel: Any = None,
    ) -> CartoJob:
        """Poll until the job ends; return it on success, raise :class:`CartoJobError` otherwise.

        At ``end_time`` (epoch seconds), or after ``unknown_status_patience`` of a status word this
        package does not know, the wait gives up: ``cancel()`` is called when given, and
        :class:`CartoJobTimeout` names the job's last status (and, when the job had ended after
        all, how it ended).
        """
        watch = JobWatch(poll_interval, end_time, self.unknown_status_patience)
        while (delay := watch.next_delay(job)) is not None:
            time.sleep(delay)
            job = self.get(job.kind, job.job_id, connection=job.connection)
        if watch.timed_out:
            ended = cancel() if cancel is not None else None
            raise CartoJobTimeout(watch.timeout_message(job, cancelled=cancel is not None, ended=ended))
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
        """Start a SQL job (``POST /v3/sql/{connection}/job``), tagged with ``metadata`` and a
        ``submission`` tag of its own, by which an ambiguous failure is looked up (module doc)."""
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
        sent = dt.datetime.now(dt.timezone.utc) - LOOKUP_MARGIN

        def find() -> dict[str, Any] | None:
            return self.find_import(connection, url, destination, since=sent)

        created = self._create(import_path(), body, policy=self.import_retry, find=find)
        job = CartoJob.from_response(IMPORT, created, connection=connection, words=self.status_words)
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


def _next_page(body: Any, seen: int, got: int) -> dict[str, Any] | None:
    """The query of the next page of a paged list reply, or None (last page, or not paged)."""
    if not isinstance(body, dict) or got == 0:
        return None
    following = body.get("next")
    if isinstance(following, str) and following:
        from urllib.parse import parse_qsl, urlsplit

        return dict(parse_qsl(urlsplit(following).query)) or None
    total, page = body.get("total"), body.get("page")
    if isinstance(total, int) and isinstance(page, int) and seen < total:
        return {"page": page + 1, "pageSize": body.get("pageSize") or got}
    return None
