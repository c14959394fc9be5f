"""``CartoAPIAsyncHook``: the async twin of :class:`~carto_provider.hooks.api.CartoAPIHook` for triggers.

Nothing here blocks the event loop: the connection comes from ``get_async_connection`` and
``get_async_extra_dejson`` (safe on Airflow 2.11 and 3.x loops), the connection's ``CartoAuth`` is
built in a worker thread (a credentials file, the token cache), and HTTP goes through
:meth:`CartoAuth.api_async_transport() <carto_provider.auth.CartoAuth.api_async_transport>`.

Every hook of one event loop (every trigger of a triggerer) on the same connection and settings
shares what that costs, built once per :data:`SHARED_TTL` seconds: one connection lookup, one
``CartoAuth`` (its token handed out on the loop while fresh, one refresh at a time in a worker thread)
and its transports, which send through the loop's one ``httpx.AsyncClient`` per origin.
Only idempotent calls live here (reading and cancelling jobs and imports), so every transient failure
is retried, and a 401 refreshes the token once and retries once.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from carto_provider.api.activity import accounts_origin
from carto_provider.api.jobs import IMPORT, SQL_JOB, CartoJob, JobKind, kind_of
from carto_provider.api.jobs import status_words as status_words_of
from carto_provider.api.sql import CARTO_DW
from carto_provider.errors import CartoAPIError
from carto_provider.hooks.api import ALREADY_ENDED_STATUS, configured_job_settings
from carto_provider.hooks.carto import CartoAuthHook, CartoConnectionSettings

if TYPE_CHECKING:
    from carto_provider.api.transport import AsyncTransport
    from carto_provider.auth.carto_auth import CartoAuth


#: Seconds an event loop keeps a connection's shared state (settings, credentials, transports) before
#: the next hook reads the Airflow connection again (an edited connection applies after that).
SHARED_TTL = 300.0


@dataclass(frozen=True)
class _Shared:
    """What every hook of one loop on one connection shares."""

    auth: CartoAuth
    api: AsyncTransport
    accounts: AsyncTransport
    #: ``configured_job_settings()``: Airflow's configuration parser costs about 0.3 ms a read, which
    #: a thousand triggers starting at once would spend on the loop.
    job_settings: tuple[dict[str, str], float]


class _Entry(NamedTuple):
    built_at: float
    build: asyncio.Task[_Shared]
    #: Waiters of a build pass one at a time, so a thousand triggers started together resume over
    #: many loop iterations instead of all in the one after the build ends (a stall of the loop).
    gate: asyncio.Lock


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Entry]] = (
    weakref.WeakKeyDictionary()
)


async def _loop_shared(key: Hashable, build: Callable[[], Awaitable[_Shared]]) -> _Shared:
    """``await build()`` once per running loop and ``key``, shared by every caller for
    :data:`SHARED_TTL` seconds; a build that failed is not kept (the next caller tries again)."""
    entries = _shared.setdefault(asyncio.get_running_loop(), {})
    entry = entries.get(key)
    now = time.monotonic()
    if entry is None or now - entry.built_at > SHARED_TTL or _failed(entry.build):
        entry = entries[key] = _Entry(now, asyncio.ensure_future(build()), asyncio.Lock())
    if entry.build.done():
        return entry.build.result()
    async with entry.gate:
        # shield: a caller cancelled while it waits (a killed trigger) must not cancel the others' build.
        return await asyncio.shield(entry.build)


def _failed(build: asyncio.Task[_Shared]) -> bool:
    return build.done() and (build.cancelled() or build.exception() is not None)


class CartoAPIAsyncHook(CartoAuthHook):
    """Reads and cancels CARTO SQL jobs and imports without blocking the event loop.

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param status_words: more job status words (as :class:`~carto_provider.hooks.api.CartoAPIHook`).
    """

    def _shared_key(self) -> Hashable:
        return (
            type(self),
            self.carto_conn_id,
            self.retry_policy,
            self.token_retry,
            repr(self.timeout),
            self.max_response_bytes,
        )

    async def _ashared(self) -> _Shared:
        return await _loop_shared(self._shared_key(), self._abuild_shared)

    async def _abuild_shared(self) -> _Shared:
        conn, extra = await self._aconnection()
        settings = CartoConnectionSettings.from_connection(conn, extra=extra)
        accounts_url = accounts_origin(settings.auth.accounts_url_for(settings.auth_url))
        # Reading a credentials file or opening the token cache is I/O: not on the loop.
        auth = await asyncio.to_thread(
            self._build_auth,
            settings,
            self.retry_policy,
            self.timeout,
            self.token_retry,
            self.max_response_bytes,
        )
        settings_of_jobs = await asyncio.to_thread(configured_job_settings)
        return _Shared(
            auth, auth.api_async_transport(), auth.api_async_transport(accounts_url), settings_of_jobs
        )

    def __init__(
        self,
        carto_conn_id: str = CartoAuthHook.default_conn_name,
        *,
        status_words: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(carto_conn_id, **kwargs)
        self._hook_status_words = status_words_of(status_words or {})  # checked now, merged per loop
        self._job_settings: tuple[dict[str, str], float] | None = None

    async def ajob_settings(self) -> tuple[dict[str, str], float]:
        """The status words (``[carto] status_words``, then this hook's) and the unknown-status
        patience (``[carto] unknown_status_patience``), the configuration read once per loop."""
        if self._job_settings is None:
            configured, patience = (await self._ashared()).job_settings
            self._job_settings = ({**configured, **self._hook_status_words}, patience)
        return self._job_settings

    async def aget_auth(self) -> CartoAuth:
        """The connection's :class:`~carto_provider.auth.CartoAuth` (the one of the running loop)."""
        return (await self._ashared()).auth

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
        """The loop's async transport to the API on this connection
        (:meth:`CartoAuth.api_async_transport`), shared with every hook of the loop."""
        return (await self._ashared()).api

    async def aaccounts_transport(self) -> AsyncTransport:
        """The loop's async transport to CARTO's accounts host (Activity Data) on this connection."""
        return (await self._ashared()).accounts

    async def aclose(self) -> None:
        """Nothing to close: the loop's transports and clients stay open for its other hooks."""

    async def _akind_call(self, kind: JobKind, method: str, path: str) -> Any:
        """An idempotent call to the host that serves ``kind``."""
        if kind.origin != "accounts":
            return await self.arequest(method, path)
        return await (await self.aaccounts_transport()).arequest_json(method, path)

    async def arequest(self, method: str, path: str, **kwargs: Any) -> Any:
        """An idempotent CARTO API call; returns the JSON body (``{}`` when empty).

        Raises :class:`~carto_provider.errors.CartoAPIError` with CARTO's error.
        """
        return await (await self.atransport()).arequest_json(method, path, **kwargs)

    # ------------------------------------------------------------------ jobs and imports

    async def aget(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """The job's current state (as ``CartoAPIHook.get``)."""
        kind = kind_of(kind)
        body = await self._akind_call(kind, "GET", kind.status_path(job_id, connection or CARTO_DW))
        return CartoJob.from_response(
            kind, body, connection=connection, job_id=job_id, words=(await self.ajob_settings())[0]
        )

    async def acancel(self, kind: str | JobKind, job_id: str, *, connection: str | None = None) -> CartoJob:
        """Cancel the job (a SQL job: ``DELETE``; an import: ``POST .../cancel``); a job that had
        already ended (400/409) is returned as it ended (as ``CartoAPIHook.cancel``)."""
        kind = kind_of(kind)
        try:
            body = await self._akind_call(
                kind, kind.cancel_method, kind.cancel_path(job_id, connection or CARTO_DW)
            )
        except CartoAPIError as exc:
            if exc.status not in ALREADY_ENDED_STATUS:  # see CartoAPIHook.cancel
                raise
            job = await self.aget(kind, job_id, connection=connection)
            if not job.done:
                raise
            self.log.info("CARTO did not cancel %s: it had already ended %r", job.describe(), job.status)
            return job
        self.log.info("Asked CARTO to cancel %s", kind.describe(job_id, connection))
        return CartoJob.from_response(
            kind, body, connection=connection, job_id=job_id, words=(await self.ajob_settings())[0]
        )

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
