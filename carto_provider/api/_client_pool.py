"""The HTTP clients async transports share: one per event loop, origin and client settings.

Airflow's triggerer runs up to 1000 triggers in one event loop. Each of them opening its own
``httpx.AsyncClient`` (a connection pool, a TLS context: ~20 ms of blocking certificate loading)
costs memory, sockets and event-loop time per trigger. Here:

* :func:`shared_client`: the running loop's one ``httpx.AsyncClient`` per origin and client settings
  (the transport's own ``_client_options()``: timeouts, headers, no redirects), with at most
  :data:`MAX_CONNECTIONS` connections, all kept alive, over :func:`tls_context`, and the
  ``asyncio.Semaphore`` of as many slots that its callers queue on (httpcore's pool costs
  O(connections^2 + queued x connections) per request: at 1000 triggers, most of the loop's CPU);
* :func:`tls_context`: the process's one TLS context (every sync and async client of the process uses
  it), made once; :func:`averify_for` makes it in a worker thread, never on an event loop.

Airflow-free, and no knowledge of CARTO: :class:`~carto_provider.api.transport.AsyncTransport` is the
only caller. httpx is imported on first use.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import weakref
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import httpx

#: Requests in flight (and so connections) per shared client; the others wait, in order, on its
#: semaphore. Why 32, not 100: httpcore 1.0's pool scans its connections for every idle one on each
#: request (O(connections^2): with 100 mostly idle connections, most of a 1000-trigger loop's CPU),
#: and the loop handles its answers one after another, so a burst of N answers blocks it for N times
#: one answer's cost. 32 slots at CARTO's ~0.2 s per poll still carry 160 polls a second.
MAX_CONNECTIONS = 32
#: Seconds an idle connection is kept (triggers poll every ``poll_interval``, 10 s by default).
KEEPALIVE_EXPIRY = 30.0


class SharedClient(NamedTuple):
    """A loop's shared client and the slots its requests take (one per connection)."""

    client: httpx.AsyncClient
    slots: asyncio.Semaphore


class Turn:
    """One request's slot of a shared client: taken before anything of the request is built (a
    request waiting for its turn holds a few coroutine frames, not its retry machinery and deadline
    timers: at 1000 triggers that is the garbage collector's work), given back while the request
    sleeps between tries, so a backoff never holds a connection."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self.slots = slots
        self.held = False

    async def __aenter__(self) -> Turn:
        await self.slots.acquire()
        self.held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._give_back()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` without the slot, then queue for it again (tenacity's ``sleep``)."""
        self._give_back()
        await asyncio.sleep(seconds)
        await self.slots.acquire()
        self.held = True

    def _give_back(self) -> None:
        # A request cancelled while it queued again holds no slot: nothing to give back.
        if self.held:
            self.held = False
            self.slots.release()


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, SharedClient]] = (
    weakref.WeakKeyDictionary()
)
_tls: ssl.SSLContext | None = None
_no_ca: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The process's one TLS context (httpx's defaults: certifi's CA bundle), made on first use
    (loading the CA bundle takes ~20 ms of CPU: not per client)."""
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


async def averify_for(url: str) -> ssl.SSLContext:
    """:func:`verify_for` from an event loop: the first TLS context is made in a worker thread."""
    if url.startswith("http://") or _tls is not None:
        return verify_for(url)
    return await asyncio.to_thread(verify_for, url)


async def shared_client(origin: str, options: dict[str, Any]) -> SharedClient:
    """The running loop's ``httpx.AsyncClient`` for ``origin`` (``scheme://host:port``) built with
    ``options`` (the keyword arguments of ``httpx.AsyncClient``, the same for every caller that
    shares it), and its slots: hold one for each request, from sending to the body read. Never close
    the client: every transport of the loop uses it, and it lives as long as the loop.
    """
    loop = asyncio.get_running_loop()
    key = (origin, _frozen(options))
    clients = _clients.setdefault(loop, {})
    shared = clients.get(key)
    if shared is None or shared.client.is_closed:
        verify = await averify_for(origin)
        shared = clients.get(key)  # another caller may have built it while this one waited
        if shared is None or shared.client.is_closed:
            import httpx

            limits = httpx.Limits(
                max_connections=MAX_CONNECTIONS,
                max_keepalive_connections=MAX_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            )
            client = httpx.AsyncClient(verify=verify, limits=limits, **options)
            shared = clients[key] = SharedClient(client, asyncio.Semaphore(MAX_CONNECTIONS))
    return shared


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value if isinstance(value, Hashable) else repr(value)
