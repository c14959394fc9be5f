"""``CartoAPIHook``: authenticated CARTO API calls from an Airflow connection, and any kind of job.

Built on :class:`~carto_provider.hooks.carto.CartoAuthHook`: every call goes through the connection's
one authenticated transport (:meth:`carto_provider.auth.CartoAuth.api_transport`), so a token comes
from the shared cache, a 401 refreshes it once and retries once, and CARTO's ``error`` ends up in the
exception. The API hooks (:mod:`.sql`, :mod:`.imports`, ...) add one method per CARTO call.

Which calls are retried, and why:

* Reads and cancellations (``GET`` a job or import, ``DELETE`` a job, ``POST .../cancel``) repeat
  harmlessly, so every transient failure is retried (connection errors, timeouts, 429, 5xx).
* Creating a job or an import, and a synchronous query, must not run twice. They are retried only
  when CARTO certainly did not act: the connection could not be set up (the request never left),
  429 (rate limited; for imports: more than 5 running at once) and 503 (not accepted), honouring
  ``Retry-After``. A timeout or another 5xx is not retried, because the job may exist or the query
  may have run; the error says so.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from carto_provider.api.activity import accounts_origin
from carto_provider.api.jobs import CartoJob, JobKind, JobWatch, kind_of
from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.api.sql import CARTO_DW
from carto_provider.api.transport import Transport
from carto_provider.errors import CartoJobTimeout
from carto_provider.hooks.carto import CartoAuthHook

log = logging.getLogger(__name__)

#: How requests that must not run twice are retried (only when CARTO refused them; see the module doc).
AT_MOST_ONCE_RETRY = CartoRetryPolicy(attempts=6, initial_wait=2.0, max_wait=60.0, max_retry_after=120.0)


class CartoAPIHook(CartoAuthHook):
    """CARTO API calls with the connection's token, and the jobs of every kind (get, cancel, wait).

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param at_most_once_retry: how calls that create something are retried when CARTO refuses them
        with 429 or 503 (nothing else is retried for them; see the module doc).
    """

    def __init__(
        self,
        carto_conn_id: str = CartoAuthHook.default_conn_name,
        *,
        at_most_once_retry: CartoRetryPolicy = AT_MOST_ONCE_RETRY,
        **kwargs: Any,
    ) -> None:
        super().__init__(carto_conn_id, **kwargs)
        self.at_most_once_retry = at_most_once_retry
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
        self, path: str, body: Any, *, policy: CartoRetryPolicy | None = None, timeout: Any = None
    ) -> Any:
        """A call that must not run twice: repeated only when CARTO certainly did not act on it."""
        return self.transport().request_json(
            "POST",
            path,
            json=body,
            at_most_once=True,
            policy=policy or self.at_most_once_retry,
            timeout=timeout,
        )

    def list_connections(self) -> list[dict[str, Any]]:
        """The CARTO connections visible to these credentials (``GET /v3/connections``), each with
        its ``name`` and ``provider``."""
        body = self._call("GET", "/v3/connections")
        items = body.get("data", []) if isinstance(body, dict) else body
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def get(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """The job's current state (a SQL job: ``GET /v3/sql/{connection}/job/{id}``; an import:
        ``GET /v3/imports/{id}``)."""
        kind = kind_of(kind)
        body = self._kind_call(kind, "GET", kind.status_path(job_id, connection or CARTO_DW))
        return CartoJob.from_response(kind, body, connection=connection, job_id=job_id)

    def cancel(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """Cancel the job (a SQL job: ``DELETE``; an import: ``POST .../cancel``)."""
        kind = kind_of(kind)
        body = self._kind_call(kind, kind.cancel_method, kind.cancel_path(job_id, connection or CARTO_DW))
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
