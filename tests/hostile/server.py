"""A hostile CARTO over real HTTP on loopback: an auth server and an API that misbehave on purpose.

``HostileServer`` answers ``POST /oauth/token`` with a token (or as told), and every other request by
the behaviour registered for its ``"METHOD /path"`` (``server.on("POST /v3/sql/carto_dw/query",
big_json(150 * MiB))``). Behaviours: a JSON body, a large JSON answer streamed, a gzip bomb, a byte
trickle (body or headers), deeply nested JSON, a redirect, any raw answer. Used by ``tests/hostile``
and ``benchmarks/boundary.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MiB = 1024 * 1024
Behaviour = Callable[[BaseHTTPRequestHandler], None]
_ROW = b'{"id":1234567,"name":"' + b"hostile-row-padding-" * 50 + b'"},'


def rows_json(size: int) -> Iterator[bytes]:
    """A ``/query`` answer of about ``size`` bytes, in 1 MiB pieces (never held whole)."""
    yield b'{"schema":[{"name":"id","type":"int64"},{"name":"name","type":"string"}],"rows":['
    piece = _ROW * (MiB // len(_ROW))
    for _ in range(max(1, size // len(piece))):
        yield piece
    yield _ROW[:-1] + b"]}"


def _send(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str]) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()


def json_body(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Behaviour:
    """Answer ``body`` as JSON."""
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body

    def answer(handler: BaseHTTPRequestHandler) -> None:
        _send(
            handler,
            status,
            {"Content-Type": "application/json", "Content-Length": str(len(raw)), **(headers or {})},
        )
        handler.wfile.write(raw)

    return answer


def big_json(size: int) -> Behaviour:
    """A valid ``/query`` answer of ``size`` bytes, chunked (no Content-Length)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        _send(handler, 200, {"Content-Type": "application/json", "Connection": "close"})
        try:
            for piece in rows_json(size):
                handler.wfile.write(piece)
        except OSError:
            pass  # the client stopped reading: what a bounded client does

    return answer


def gzip_bomb(size: int) -> Behaviour:
    """A ``/query`` answer that inflates to ``size`` bytes from about ``size / 1000`` sent."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    packed = b"".join(compressor.compress(piece) for piece in rows_json(size)) + compressor.flush()

    def answer(handler: BaseHTTPRequestHandler) -> None:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        _send(handler, 200, {**headers, "Content-Length": str(len(packed)), "Connection": "close"})
        with contextlib.suppress(OSError):
            handler.wfile.write(packed)

    return answer


def trickle(
    every: float, body: bytes = b'{"rows": []}' + b" " * 200, *, headers_too: bool = False
) -> Behaviour:
    """Send one byte every ``every`` seconds: the body's, or (``headers_too``) the headers' as well."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        slow = head + body if headers_too else body
        try:
            if not headers_too:
                handler.wfile.write(head)
                handler.wfile.flush()
            for byte in slow:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(every)
        except OSError:
            pass
        handler.close_connection = True

    return answer


def deep_json(depth: int = 100_000, status: int = 200) -> Behaviour:
    """JSON nested ``depth`` levels (``{"error": [[[...]]]}``)."""
    return json_body(b'{"error": ' + b"[" * depth + b"]" * depth + b"}", status)


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that stops reading resets the connection: what a bounded client does


class HostileServer:
    """A threaded HTTP server on 127.0.0.1; ``url`` is its base URL (API and auth server alike)."""

    def __init__(self) -> None:
        self.routes: dict[str, Behaviour] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self._tokens = itertools.count(1)
        self.token_answer: Behaviour | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                key = f"{self.command} {self.path.split('?')[0]}"
                server.seen.append((key, dict(self.headers)))
                behaviour = server.routes.get(key)
                if behaviour is None and key == "POST /oauth/token":
                    behaviour = server.token_answer or server.issue_token
                (behaviour or json_body({"error": "no such route"}, 404))(self)

            do_GET = do_POST = do_DELETE = do_PUT = _any

        self.httpd = _Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def issue_token(self, handler: BaseHTTPRequestHandler) -> None:
        """A fresh M2M token answer."""
        token = f"hostile-token-{next(self._tokens)}-abcdefghijklmnop"
        json_body({"access_token": token, "expires_in": 86400, "token_type": "Bearer"})(handler)

    def on(self, route: str, behaviour: Behaviour) -> HostileServer:
        """Answer ``"METHOD /path"`` with ``behaviour``."""
        self.routes[route] = behaviour
        return self

    def calls(self, route: str) -> int:
        """How many requests ``"METHOD /path"`` received."""
        return sum(1 for key, _ in self.seen if key == route)

    def connection(self, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (JSON form) with this server as API and auth server."""
        return {
            "conn_type": "carto",
            "host": self.url,
            "login": "hostile-client",
            "password": "hostile-secret-0123456789",
            "extra": {"auth_url": self.url, **extra},
        }

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
