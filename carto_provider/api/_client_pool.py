"""What every CARTO trigger of one event loop shares: HTTP clients, per-connection state, tokens.

Airflow's triggerer runs up to 1000 triggers in one event loop. Each trigger building its own
``httpx.AsyncClient`` (a connection pool, a TLS context: ~20 ms of blocking certificate loading),
looking its Airflow connection up and hopping to a worker thread for every token costs memory,
sockets and event-loop time per trigger. Here they are built once per event loop:

* :func:`shared_client`: one ``httpx.AsyncClient`` per loop and origin (and client settings), with
  at most :data:`MAX_CONNECTIONS` connections, all kept alive, over one TLS context per process
  (:func:`tls_context`, made in a worker thread; every sync client of the process uses it too);
* :func:`loop_shared`: any per-loop value built once (single flight: concurrent callers await the
  same build) and rebuilt after ``ttl`` seconds, e.g. a connection's transport and tokens;
* :class:`LoopTokens`: a connection's bearer tokens on one loop: the last one while it is fresh
  (no thread, no lock), one refresh at a time in a worker thread otherwise.

Airflow-free; httpx is imported on first use.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

#: Connections per shared client: every trigger of a loop polls through at most this many.
MAX_CONNECTIONS = 100
#: Seconds an idle connection is kept (polls come every ``poll_interval``, 10 s by default).
KEEPALIVE_EXPIRY = 30.0

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)
_shared: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[Hashable, tuple[float, asyncio.Task[Any]]]
] = weakref.WeakKeyDictionary()
_tls: ssl.SSLContext | None = None
_no_ca: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The process's one TLS context (httpx's defaults: certifi's CA bundle), made on first use
    (loading the CA bundle takes ~20 ms of CPU: not per client, and not on an event loop)."""
    global _tls
    with _tls_lock:
        if _tls is None:
            import httpx

            _tls = httpx.create_ssl_context()
        return _tls


def verify_for(url: str) -> ssl.SSLContext:
    """The TLS context of a client for ``url``: :func:`tls_context`, or for a plain ``http://``
    origin (the emulator, a local proxy) one that trusts no CA at all, so nothing is loaded for it
    and any ``https://`` call through that client fails verification instead of skipping it."""
    global _no_ca
    if not url.startswith("http://"):
        return tls_context()
    if _no_ca is None:
        _no_ca = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname, no CAs
    return _no_ca


async def shared_client(origin: str, **options: Any) -> httpx.AsyncClient:
    """The running loop's ``httpx.AsyncClient`` for ``origin`` (``scheme://host:port``) and
    ``options`` (``timeout``, ``headers``, ``follow_redirects``: hashable once frozen).

    Never close it: every trigger of the loop uses it, and it lives as long as the loop.
    """
    loop = asyncio.get_running_loop()
    key = (origin, _frozen(options))
    clients = _clients.setdefault(loop, {})
    client = clients.get(key)
    if client is None or client.is_closed:
        verify = (
            verify_for(origin)
            if origin.startswith("http://") or _tls
            else await asyncio.to_thread(tls_context)
        )
        client = clients.get(key)  # another caller may have built it while this one waited
        if client is None or client.is_closed:
            import httpx

            limits = httpx.Limits(
                max_connections=MAX_CONNECTIONS,
                max_keepalive_connections=MAX_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            )
            client = clients[key] = httpx.AsyncClient(verify=verify, limits=limits, **options)
    return client


async def loop_shared(key: Hashable, build: Callable[[], Awaitable[T]], *, ttl: float) -> T:
    """``await build()`` once per running loop and ``key``, shared by every caller for ``ttl``
    seconds; a build that failed is not kept (the next caller tries again)."""
    loop = asyncio.get_running_loop()
    entries = _shared.setdefault(loop, {})
    entry = entries.get(key)
    now = time.monotonic()
    if entry is None or now - entry[0] > ttl or (entry[1].done() and entry[1].exception() is not None):
        entry = entries[key] = (now, asyncio.ensure_future(build()))
    # shield: a caller cancelled while it waits (a killed trigger) must not cancel the others' build.
    return await asyncio.shield(entry[1])


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value if isinstance(value, Hashable) else repr(value)


class Token(Protocol):
    """What :class:`LoopTokens` needs of a token (``carto_provider.auth.tokens.AccessToken``)."""

    @property
    def value(self) -> str:
        """The bearer token."""

    @property
    def fresh_until(self) -> float:
        """Epoch seconds before which the token needs no refresh."""


class LoopTokens:
    """A connection's bearer tokens on one event loop.

    :param get_token: the blocking token source (file or Redis cache, token endpoint), called with
        ``rejected=`` the value a server just refused (or None); it runs in a worker thread.

    Calling the instance returns a token value: the last one while it is fresh and not the refused
    one, without leaving the loop; otherwise one caller fetches in a thread while the others wait
    for it (so 1000 triggers whose token is refused make one refresh, not 1000).
    """

    def __init__(self, get_token: Callable[..., Token]) -> None:
        self._get_token = get_token
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    def _current(self, rejected: str | None) -> str | None:
        token = self._token
        if token is not None and token.value != rejected and time.time() < token.fresh_until:
            return token.value
        return None

    async def __call__(self, rejected: str | None) -> str:
        value = self._current(rejected)
        if value is not None:
            return value
        async with self._lock:
            value = self._current(rejected)
            if value is not None:
                return value
            token = await asyncio.to_thread(self._get_token, rejected=rejected)
            self._token = token
            return token.value
