"""``CartoSQLAsyncHook``: the async twin of :class:`~carto_provider.hooks.sql.CartoSQLHook` for triggers.

Nothing here blocks the event loop: the connection comes from ``get_async_connection`` and
``get_async_extra_dejson`` (safe on Airflow 2.11 and 3.x loops), tokens come from the same shared
cache as every task (file or Redis I/O, so it runs in a worker thread, where Airflow's ``mask_secret``
is safe too), and HTTP goes through :class:`~carto_provider.transport.AsyncTransport`.

Every hook of one event loop (every trigger of a triggerer) on the same connection shares one
transport, built once per :data:`SHARED_TTL`: one connection lookup, one ``CartoAuth``, one
``httpx.AsyncClient`` per origin (:mod:`carto_provider.api._client_pool`), and the last token
handed out without a thread hop while it is fresh.
Only idempotent calls live here (reading and cancelling jobs and imports), so every transient failure
is retried, and a 401 refreshes the token once and retries once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from carto_provider.api._client_pool import LoopTokens, loop_shared
from carto_provider.hooks.carto import CartoAuthHook, CartoConnectionSettings
from carto_provider.hooks.jobs import IMPORT, SQL_JOB, CartoJob, JobKind, kind_of
from carto_provider.hooks.sql_api import CARTO_DW
from carto_provider.transport import AsyncTransport

if TYPE_CHECKING:
    from carto_provider.auth.carto_auth import CartoAuth


#: Seconds an event loop keeps a connection's transport (settings, credentials, tokens) before the
#: next hook reads the Airflow connection again.
SHARED_TTL = 300.0


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
            self._auth = await asyncio.to_thread(
                self._build_auth, settings, self.retry_policy, self.timeout, self.token_retry
            )
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
        from airflow.providers.common.compat.sdk import AirflowNotFoundException

        try:
            conn = await get_async_connection(self.carto_conn_id, hook=self)
        except AirflowNotFoundException:
            # `airflow dags test` (Airflow 3.3.2) runs triggers in-process without an async connection
            # lookup, so a connection stored in the database is "not defined" there: read it the
            # synchronous way, in a worker thread (eco, issue 13).
            conn = await asyncio.to_thread(self.get_connection, self.carto_conn_id)
        return conn, await get_async_extra_dejson(conn)

    async def atransport(self) -> AsyncTransport:
        """The transport this hook shares with every hook of the running loop on its connection."""
        key = (type(self).__name__, self.carto_conn_id, self.retry_policy, self.token_retry, self.timeout)
        return await loop_shared(key, self._abuild_transport, ttl=SHARED_TTL)

    async def _abuild_transport(self) -> AsyncTransport:
        auth = await self.aget_auth()
        return await AsyncTransport.shared(
            auth.get_api_base_url(),
            atokens=LoopTokens(auth.get_token),
            policy=self.retry_policy,
            timeout=self.timeout,
        )

    async def aclose(self) -> None:
        """Nothing to close: the loop's transport and client stay open for its other hooks."""

    async def arequest(self, method: str, path: str, **kwargs: Any) -> Any:
        """An idempotent CARTO API call; returns the JSON body (``{}`` when empty).

        Raises :class:`~carto_provider.errors.CartoAPIError` with CARTO's error.
        """
        return await (await self.atransport()).arequest_json(method, path, **kwargs)

    # ------------------------------------------------------------------ jobs and imports

    async def aget(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """The job's current state (as ``CartoSQLHook.get``)."""
        kind = kind_of(kind)
        body = await self.arequest("GET", kind.status_path(job_id, connection or CARTO_DW))
        return CartoJob.from_response(kind, body, connection=connection, job_id=job_id)

    async def acancel(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """Cancel the job (a SQL job: ``DELETE``; an import: ``POST .../cancel``)."""
        kind = kind_of(kind)
        body = await self.arequest(kind.cancel_method, kind.cancel_path(job_id, connection or CARTO_DW))
        self.log.info("Asked CARTO to cancel %s", kind.describe(job_id, connection))
        return CartoJob.from_response(kind, body, connection=connection, job_id=job_id)

    async def aget_job(self, job_id: str, *, connection: str = CARTO_DW) -> CartoJob:
        """The SQL job's current state."""
        return await self.aget(SQL_JOB, job_id, connection=connection)

    async def acancel_job(self, job_id: str, *, connection: str = CARTO_DW) -> CartoJob:
        """Cancel the SQL job."""
        return await self.acancel(SQL_JOB, job_id, connection=connection)

    async def aget_import(self, job_id: str) -> CartoJob:
        """The import's current state."""
        return await self.aget(IMPORT, job_id)

    async def acancel_import(self, job_id: str) -> CartoJob:
        """Cancel the import."""
        return await self.acancel(IMPORT, job_id)

    # The names before async methods took the ``a`` prefix (deprecated).
    get_job = aget_job
    cancel_job = acancel_job
    get_import = aget_import
    cancel_import = acancel_import
