"""A one-shot HTTP listener on the loopback interface that receives the browser's OAuth redirect.

Following RFC 8252 §7.3 and §8.3: it binds loopback addresses only (``localhost`` in the redirect URI
means both 127.0.0.1 and ::1, since browsers may try either), it answers GET on the exact callback path
only (anything else, such as ``/favicon.ico``, gets a 404 and does not end the wait), its pages are
static (nothing from the request is echoed back), request lines are never logged (they carry the
authorization code). A callback whose ``state`` is wrong or missing is answered (400) and ignored, so a
forged link cannot cancel a login in progress: the flow ends at the first callback the login accepts.
Connections are served concurrently (at most :data:`MAX_CONNECTIONS`), each with a short timeout, so
idle connections cannot stall the real redirect. A port that another program listens on fails at
once with a clear error.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from carto_provider.auth.urls import is_loopback_host
from carto_provider.errors import CredentialsError

#: Receives the callback's query parameters; returns True (accepted: success page, flow ends), False
#: (this login's callback, but a failure: failure page, flow ends) or None (not this login's: ignored).
CallbackHandler = Callable[[dict[str, str]], bool | None]

#: Seconds one browser connection may take to send its request.
CONNECTION_TIMEOUT = 5.0
#: Connections served at once; more are closed at once.
MAX_CONNECTIONS = 16
_POLL_INTERVAL = 0.2
_BIND_ATTEMPTS = 5


def _page(title: str, text: str) -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>CARTO login</title></head>"
        "<body style='font-family:sans-serif;margin:4em auto;max-width:34em'>"
        f"<h1>{title}</h1><p>{text}</p></body></html>"
    ).encode()


SUCCESS_PAGE = _page("You are logged in to CARTO", "You can close this tab and return to the terminal.")
FAILURE_PAGE = _page("CARTO login failed", "Return to the terminal to see why, then try again.")
NOT_FOUND_PAGE = _page("Not found", "This local page only receives the CARTO login.")


class _CallbackRequest(BaseHTTPRequestHandler):
    """Handles one browser request on an accepted connection."""

    server: LoopbackListener  # type: ignore[assignment]
    timeout = CONNECTION_TIMEOUT
    server_version = "carto-provider-login"
    sys_version = ""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != self.server.path:
            self._reply(404, NOT_FOUND_PAGE)
            return
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if "code" not in params and "error" not in params:
            self._reply(404, NOT_FOUND_PAGE)
            return
        outcome = self.server.deliver(params)
        self._reply(200 if outcome else 400, SUCCESS_PAGE if outcome else FAILURE_PAGE)
        if outcome is not None:
            self.server.finish()

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line holds the authorization code."""


def _bind_addresses(host: str) -> list[tuple[socket.AddressFamily, str]]:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
    return [(socket.AF_INET6 if ":" in host else socket.AF_INET, host)]


def _listening_socket(family: socket.AddressFamily, address: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if sys.platform == "win32":
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", 0), 1)
        else:
            # On POSIX this only skips TIME_WAIT left by the previous login; a live listener still
            # makes bind() fail, which is what must happen.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(8)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class LoopbackListener:
    """Listens for the OAuth redirect to ``redirect_uri`` (``http://<loopback host>:<port>/<path>``).

    Port 0 picks a free port (see :attr:`redirect_uri` for the one chosen); that only works with an
    auth server that accepts any loopback port. ``on_callback`` runs in the listener's thread.
    """

    def __init__(self, redirect_uri: str, on_callback: CallbackHandler) -> None:
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or not parts.hostname or not is_loopback_host(parts.hostname):
            raise CredentialsError(
                f"The redirect URI {redirect_uri!r} is not an http:// URL on localhost or a loopback "
                "address; the browser login can only receive the redirect there."
            )
        self.host = parts.hostname
        self.port = parts.port if parts.port is not None else 80
        self.path = parts.path or "/"
        self._url_host = f"[{self.host}]" if ":" in self.host else self.host
        self._on_callback = on_callback
        self._sockets: list[socket.socket] = []
        self._done = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._deliver_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        #: Callbacks ignored because they were not this login's (wrong or missing ``state``).
        self.ignored = 0

    @property
    def redirect_uri(self) -> str:
        """The redirect URI with the port actually listened on."""
        return f"http://{self._url_host}:{self.port}{self.path}"

    @property
    def bound_addresses(self) -> list[tuple[str, int]]:
        """The (address, port) pairs listened on while started."""
        return [sock.getsockname()[:2] for sock in self._sockets]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LoopbackListener:
        """Bind every loopback address of the host (failing fast if the port is taken) and serve."""
        for attempt in range(_BIND_ATTEMPTS):
            try:
                self._bind_all()
                break
            except _EphemeralClash:
                if attempt == _BIND_ATTEMPTS - 1:
                    raise CredentialsError("Could not find a free local port for the CARTO login.") from None
        self._thread = threading.Thread(target=self._serve, name="carto-login-callback", daemon=True)
        self._thread.start()
        return self

    def _bind_all(self) -> None:
        wanted = self.port
        port = wanted
        for family, address in _bind_addresses(self.host):
            try:
                sock = _listening_socket(family, address, port)
            except OSError as exc:
                if (
                    family == socket.AF_INET6
                    and len(self._sockets) > 0
                    and exc.errno
                    in (
                        errno.EADDRNOTAVAIL,
                        errno.EAFNOSUPPORT,
                    )
                ):
                    continue  # no IPv6 loopback on this machine: IPv4 alone will do
                self._close_sockets()
                if exc.errno == errno.EADDRINUSE and wanted == 0:
                    raise _EphemeralClash() from None
                raise self._bind_error(address, port, exc) from None
            self._sockets.append(sock)
            port = sock.getsockname()[1]
        self.port = port

    def _bind_error(self, address: str, port: int, exc: OSError) -> CredentialsError:
        if exc.errno == errno.EADDRINUSE:
            return CredentialsError(
                f"Port {port} on {address} is already in use by another program, so the CARTO login "
                f"cannot receive your browser's redirect to {self.redirect_uri}. Stop that program "
                f"(`lsof -i :{port}` shows it), or log in with `carto-provider login --no-browser` "
                "(or from_oauth(open_browser=False)) and paste the address instead."
            )
        return CredentialsError(
            f"Cannot listen on {address} port {port} for the CARTO login ({exc.strerror or exc}). "
            "Log in with --no-browser instead."
        )

    def close(self) -> None:
        """Stop listening (idempotent)."""
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=CONNECTION_TIMEOUT + 1)
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets = []

    def __enter__(self) -> LoopbackListener:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ serving

    def wait(self, timeout: float) -> bool:
        """Block until a callback ended the flow (True) or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)

    def deliver(self, params: dict[str, str]) -> bool | None:
        """Hand a callback's parameters to ``on_callback`` (called by the request handlers, one at a
        time); once the flow has ended, every later callback is ignored."""
        with self._deliver_lock:
            if self._done.is_set():
                return None
            outcome = self._on_callback(params)
            if outcome is None:
                self.ignored += 1
            return outcome

    def finish(self) -> None:
        """Mark the flow as ended: no further request is served."""
        self._done.set()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            for sock in self._sockets:
                selector.register(sock, selectors.EVENT_READ)
            while not self._done.is_set() and not self._closed.is_set():
                for key, _ in selector.select(timeout=_POLL_INTERVAL):
                    if self._done.is_set():
                        break
                    self._accept(key.fileobj)  # type: ignore[arg-type]

    def _accept(self, listening: socket.socket) -> None:
        try:
            conn, address = listening.accept()
        except OSError:
            return
        if not self._slots.acquire(blocking=False):
            conn.close()  # too many at once: a browser retries, a flood gets nothing
            return
        threading.Thread(target=self._handle, args=(conn, address), daemon=True).start()

    def _handle(self, conn: socket.socket, address: Any) -> None:
        try:
            conn.setblocking(True)
            conn.settimeout(CONNECTION_TIMEOUT)
            _CallbackRequest(conn, address, self)  # type: ignore[arg-type]
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # a browser that went away or stayed silent: keep waiting for the next one
        finally:
            conn.close()
            self._slots.release()


class _EphemeralClash(Exception):
    """Internal: the free port picked on one address family is taken on the other; pick again."""
