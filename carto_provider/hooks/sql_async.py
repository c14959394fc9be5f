"""``CartoSQLAsyncHook``: the async twin of :class:`~carto_provider.hooks.sql.CartoSQLHook` for triggers.

Nothing here blocks the event loop: the connection comes from ``get_async_connection`` and
``get_async_extra_dejson`` (safe on Airflow 2.11 and 3.x loops), tokens come from the same shared
cache as every task (file or Redis I/O, so it runs in a worker thread, where Airflow's ``mask_secret``
is safe too), and HTTP goes through ``httpx.AsyncClient`` with timeouts and tenacity's
``AsyncRetrying``. Only idempotent calls live here (reading and cancelling jobs and imports), so every
transient failure is retried: connection errors, timeouts, 429 and 5xx, honouring ``Retry-After``.
A 401 refreshes the token once and retries once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import tenacity

from carto_provider.auth.http import (
    RETRYABLE_STATUS,
    USER_AGENT,
    RetryableStatus,
    RetryAfterWait,
    redact_url,
)
from carto_provider.auth.session import api_error, api_unreachable_error
from carto_provider.hooks.carto import CartoAuthHook, CartoConnectionSettings
from carto_provider.hooks.sql import IMPORT, SQL_JOB
from carto_provider.hooks.sql_api import CARTO_DW, CartoJob, import_path, job_path, response_json

if TYPE_CHECKING:
    import httpx
    import requests

    from carto_provider.auth.carto_auth import CartoAuth

#: Connection set-up failures retried inside httpx's transport (the request was never sent).
CONNECT_RETRIES = 3


class _ResponseView:
    """What :func:`~carto_provider.auth.session.api_error` reads, from an httpx response."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.url = str(response.url)
        self.reason = response.reason_phrase
        self.request = response.request

    def json(self) -> Any:
        return self._response.json()


class CartoSQLAsyncHook(CartoAuthHook):
    """Reads and cancels CARTO SQL jobs and imports without blocking the event loop.

    :param carto_conn_id: the Airflow connection (type ``carto``).
    """

    async def aget_auth(self) -> CartoAuth:
        """The connection's :class:`~carto_provider.auth.CartoAuth`, built off the event loop."""
        if self._auth is None:
            conn, extra = await self._aconnection()
            settings = CartoConnectionSettings.from_connection(conn, extra=extra)
            # Reading a credentials file or opening the token cache is I/O: not on the loop.
            self._auth = await asyncio.to_thread(self._build_auth, settings, self.retry_policy, self.timeout)
        return self._auth

    async def _aconnection(self) -> tuple[Any, dict[str, Any]]:
        """The Airflow connection and its extra, read without blocking the event loop."""
        try:
            from airflow.providers.common.compat.connection import (
                get_async_connection,
                get_async_extra_dejson,
            )
        except ImportError:  # common-compat < 1.21: what those helpers do there, in a worker thread
            from asgiref.sync import sync_to_async

            conn = await sync_to_async(self.get_connection)(self.carto_conn_id)
            return conn, await sync_to_async(lambda: conn.extra_dejson)()
        conn = await get_async_connection(self.carto_conn_id, hook=self)
        return conn, await get_async_extra_dejson(conn)

    async def _token(self, auth: CartoAuth, rejected: str | None = None) -> str:
        token = await asyncio.to_thread(auth.get_token, rejected=rejected)
        return token.value

    async def arequest(self, method: str, path: str, **kwargs: Any) -> Any:
        """An idempotent CARTO API call; returns the JSON body (``{}`` when empty).

        Raises :class:`~carto_provider.auth.errors.CartoAPIError` with CARTO's error.
        """
        import httpx

        auth = await self.aget_auth()
        base = auth.get_api_base_url()
        url = f"{base}/{path.lstrip('/')}"
        connect, read = self.timeout if isinstance(self.timeout, tuple) else (self.timeout, self.timeout)
        transport = httpx.AsyncHTTPTransport(retries=CONNECT_RETRIES)
        async with httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(read, connect=connect),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        ) as client:
            token = await self._token(auth)
            response = await self._send(client, method, url, token, base, **kwargs)
            if response.status_code == 401:
                token = await self._token(auth, rejected=token)
                response = await self._send(client, method, url, token, base, **kwargs)
        if response.status_code >= 400:
            raise api_error(cast("requests.Response", _ResponseView(response)), api_base_url=base)
        return response_json(response)

    async def _send(
        self, client: httpx.AsyncClient, method: str, url: str, token: str, base: str, **kwargs: Any
    ) -> httpx.Response:
        import httpx

        policy = self.retry_policy
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=RetryAfterWait(policy),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, RetryableStatus)),
            before_sleep=lambda state: self.log.warning(
                "CARTO %s %s failed (%s); retry %d of %d",
                method,
                redact_url(url),
                type(state.outcome.exception()).__name__ if state.outcome else "?",
                state.attempt_number,
                policy.attempts - 1,
            ),
            reraise=True,
        )
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async for attempt in retrying:
                with attempt:
                    response = await client.request(method, url, headers=headers, **kwargs)
                    if response.status_code in RETRYABLE_STATUS:
                        raise RetryableStatus(response)
                    return response
        except RetryableStatus as exc:
            return exc.response
        except httpx.TransportError as exc:
            raise api_unreachable_error(
                exc, api_base_url=base, url=url, timed_out=isinstance(exc, httpx.TimeoutException)
            ) from None
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    # ------------------------------------------------------------------ jobs and imports

    async def get_job(self, job_id: str, *, connection: str = CARTO_DW) -> CartoJob:
        """The SQL job's current state."""
        body = await self.arequest("GET", job_path(connection, job_id))
        return CartoJob.from_response(SQL_JOB, body, connection=connection, job_id=job_id)

    async def cancel_job(self, job_id: str, *, connection: str = CARTO_DW) -> CartoJob:
        """Cancel the SQL job."""
        body = await self.arequest("DELETE", job_path(connection, job_id))
        self.log.info("Asked CARTO to cancel SQL job %r on connection %r", job_id, connection)
        return CartoJob.from_response(SQL_JOB, body, connection=connection, job_id=job_id)

    async def get_import(self, job_id: str) -> CartoJob:
        """The import's current state."""
        return CartoJob.from_response(IMPORT, await self.arequest("GET", import_path(job_id)), job_id=job_id)

    async def cancel_import(self, job_id: str) -> CartoJob:
        """Cancel the import."""
        body = await self.arequest("POST", import_path(job_id, "cancel"))
        self.log.info("Asked CARTO to cancel import %r", job_id)
        return CartoJob.from_response(IMPORT, body, job_id=job_id)
