"""``CartoAPIHook``: authenticated CARTO API calls from an Airflow connection, and any kind of job.

Built on :class:`~carto_provider.hooks.carto.CartoAuthHook`: every call goes through the connection's
one authenticated transport (:meth:`carto_provider.auth.CartoAuth.api_transport`), so a token comes
from the shared cache, a 401 refreshes it once and retries once, and CARTO's ``error`` ends up in the
exception. The API hooks (:mod:`.sql`, :mod:`.imports`, ...) add one method per CARTO call.

Which calls are retried, and why:

* Reads and cancellations (``GET`` a job or import, ``DELETE`` a job, ``POST .../cancel``) repeat
  harmlessly, so every transient failure is retried (connection errors, timeouts, 429, 5xx).
* Creating a job or an import, and a synchronous query, must not run twice. They are retried only
  when CARTO certainly did not act: the connection could not be set up (the request never left)
  and 429 (rate limited; for imports: more than 5 running at once), honouring ``Retry-After``.
  A 5xx or a timeout after sending is ambiguous (a CDN may answer 503 after CARTO received the
  POST): a job or import is then looked up first (``find``: a SQL job by its ``submission`` tag in
  ``GET /v3/sql/jobs``, an import by connection, URL and destination in ``GET /v3/imports``) and
  sent again only when not found, once (CARTO's field notes, CartoDB/agent-skills
  ``migrate-data/import-flow.md``: "503: back off, retry once"). A query cannot be looked up, so it
  is not repeated; the error says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from carto_provider.api.activity import accounts_origin
from carto_provider.api.jobs import (
    UNKNOWN_STATUS_PATIENCE,
    CartoJob,
    JobKind,
    JobWatch,
    kind_of,
    status_words,
)
from carto_provider.api.retry import AMBIGUOUS_STATUS, CartoRetryPolicy
from carto_provider.api.sql import CARTO_DW
from carto_provider.api.transport import Transport
from carto_provider.errors import CartoAPIError, CartoJobTimeout
from carto_provider.hooks.carto import CartoAuthHook

log = logging.getLogger(__name__)

#: How requests that must not run twice are retried (only when CARTO refused them; see the module doc).
AT_MOST_ONCE_RETRY = CartoRetryPolicy(attempts=6, initial_wait=2.0, max_wait=60.0, max_retry_after=120.0)
#: The most pages of ``GET /v3/connections`` followed.
MAX_PAGES = 100
#: What CARTO may answer a cancel of a job that had already ended (its Activity Data jobs: 400).
ALREADY_ENDED_STATUS = frozenset({400, 409})


def configured_job_settings() -> tuple[dict[str, str], float]:
    """The status vocabulary with ``[carto] status_words`` (JSON) and ``[carto] unknown_status_patience``
    (else 600 s): Airflow's configuration, read once per hook (a trigger's hook: once per event loop
    and connection, see ``CartoAPIAsyncHook.ajob_settings``)."""
    from airflow.providers.common.compat.sdk import conf

    configured = status_words(conf.get("carto", "status_words", fallback="") or "")
    patience = conf.getfloat("carto", "unknown_status_patience", fallback=UNKNOWN_STATUS_PATIENCE)
    return configured, float(patience)


def job_settings(words: Mapping[str, str] | None, patience: float | None) -> tuple[dict[str, str], float]:
    """The status vocabulary (``[carto] status_words`` JSON, then ``words``) and the patience with
    an unknown word (``patience``, else ``[carto] unknown_status_patience``, else 600 s)."""
    configured, configured_patience = configured_job_settings()
    merged = {**configured, **status_words(words or {})}
    return merged, float(configured_patience if patience is None else patience)


def is_ambiguous(exc: CartoAPIError) -> bool:
    """Whether a failed creation may have happened anyway (a 5xx, or no answer after sending)."""
    return exc.status is None or exc.status in AMBIGUOUS_STATUS or exc.status >= 500


class CartoAPIHook(CartoAuthHook):
    """CARTO API calls with the connection's token, and the jobs of every kind (get, cancel, wait).

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param at_most_once_retry: how calls that create something are retried when CARTO refuses them
        with 429 (a 5xx is looked up first; see the module doc).
    :param status_words: more job status words, word -> ``success``/``failed``/``cancelled``/
        ``running`` (added to those of :mod:`carto_provider.api.jobs` and ``[carto] status_words``).
    :param unknown_status_patience: seconds an unknown status word is polled on (default
        ``[carto] unknown_status_patience``, 600 s).
    """

    def __init__(
        self,
        carto_conn_id: str = CartoAuthHook.default_conn_name,
        *,
        at_most_once_retry: CartoRetryPolicy = AT_MOST_ONCE_RETRY,
        status_words: Mapping[str, str] | None = None,
        unknown_status_patience: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(carto_conn_id, **kwargs)
        self.at_most_once_retry = at_most_once_retry
        self.status_words, self.unknown_status_patience = job_settings(status_words, unknown_status_patience)
        self._accounts: Transport | None = None

    def transport(self) -> Transport:
        """The connection's one authenticated HTTP transport (see the module doc)."""
        return self.get_auth().api_transport()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """An idempotent call: every transient failure retried (see the module doc)."""
        return self.transport().request_json(method, path, **kwargs)

    def accounts_transport(self) -> Transport:
        """A transport to CARTO's accounts host (Activity Data), with the connection's tokens."""
        if self._accounts is None:
            settings = self.settings
            origin = accounts_origin(settings.auth.accounts_url_for(settings.auth_url))
            self._accounts = self.get_auth().api_transport(origin)
        return self._accounts

    def _kind_call(self, kind: JobKind, method: str, path: str, **kwargs: Any) -> Any:
        """An idempotent call to the host that serves ``kind`` (the API, or CARTO's accounts host)."""
        transport = self.accounts_transport() if kind.origin == "accounts" else self.transport()
        return transport.request_json(method, path, **kwargs)

    def _create(
        self,
        path: str,
        body: Any,
        *,
        policy: CartoRetryPolicy | None = None,
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

    def list_connections(self) -> list[dict[str, Any]]:
        """The CARTO connections visible to these credentials (``GET /v3/connections``), each with
        its ``name`` and provider (read it with :func:`~carto_provider.api.sql.connection_provider`).

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

    def get(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """The job's current state (a SQL job: ``GET /v3/sql/{connection}/job/{id}``; an import:
        ``GET /v3/imports/{id}``)."""
        kind = kind_of(kind)
        body = self._kind_call(kind, "GET", kind.status_path(job_id, connection or CARTO_DW))
        return CartoJob.from_response(
            kind, body, connection=connection, job_id=job_id, words=self.status_words
        )

    def cancel(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """Cancel the job (a SQL job: ``DELETE``; an import: ``POST .../cancel``). A job that had
        already ended may be refused with 400 or 409 (as CARTO's Activity Data jobs are): it is then
        read and returned as it ended, so its real outcome is reported, not the refusal."""
        kind = kind_of(kind)
        try:
            body = self._kind_call(kind, kind.cancel_method, kind.cancel_path(job_id, connection or CARTO_DW))
        except CartoAPIError as exc:
            # CARTO's Activity Data jobs answer 400 when cancelling a finished job; SQL jobs and
            # imports may too (not published): report how the job really ended.
            if exc.status not in ALREADY_ENDED_STATUS:
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
