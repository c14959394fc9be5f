"""A real HTTP server on loopback that answers what a test scripts, and records what it received.

For hostile answers the emulator does not give (redirects, huge or deeply nested bodies, echoes).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Answer:
    """What to send back: status, headers and a body (bytes, or anything JSON-encodable)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


Script = Callable[[Received], Answer]


class ScriptedServer:
    """``with ScriptedServer(script) as server:`` serves ``script(request)`` on ``server.url``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[Received] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(self.command, self.path, dict(self.headers), self.rfile.read(length))
                outer.received.append(request)
                answer = outer.script(request)
                body = answer.encoded()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def token_answer(**overrides: Any) -> Answer:
    """A well-formed client-credentials answer, with ``overrides`` merged in."""
    return Answer(
        200, {"access_token": "tok-abc.def.ghi", "expires_in": 3600, "token_type": "Bearer", **overrides}
    )
