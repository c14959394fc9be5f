"""The CARTO emulator: a real HTTP server on loopback that behaves like CARTO for tests and demos.

>>> from carto_provider.testing import CartoEmulator
>>> with CartoEmulator() as carto:                       # doctest: +SKIP
...     auth = CartoAuth.from_values(carto.url, carto.client_id, carto.client_secret, auth_url=carto.url)
...     auth.get_access_token()
...     assert carto.calls("POST /oauth/token") == 1

It counts requests (``calls``, ``events``), and can be told to fail (``add_fault``) or to be slow
(``set_latency``). Later CARTO APIs are added as router modules (see ``routes/__init__.py``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
import threading
import time
from types import TracebackType
from typing import Any

from carto_provider.testing.quirks import Quirks
from carto_provider.testing.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorState, Fault

STARTUP_TIMEOUT = 15.0


def create_app(state: EmulatorState) -> Any:
    """The FastAPI application serving ``state``."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    from carto_provider.testing.routes import ROUTER_MODULES
    from carto_provider.testing.routes.common import EmulatorHTTPError, error_response

    app = FastAPI(title="CARTO emulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.emulator_state = state

    @app.middleware("http")
    async def count_and_inject(request: Request, call_next: Any) -> Response:
        method, path = request.method, request.url.path
        state.count_call(method, path)
        if path.startswith("/v3/"):  # the API calls CARTO credits to a client (``client=``)
            state.record("client", request.query_params.get("client", ""))
            state.last_query[f"{method} {path}"] = request.url.query
        delay = state.latency_for(method, path)
        fault = state.take_fault(method, path)
        if fault is not None:
            delay += fault.delay
        if delay:
            await asyncio.sleep(delay)
        if fault is not None and fault.status is not None:
            body = fault.body if fault.body is not None else {"error": f"injected {fault.status}"}
            return JSONResponse(body, status_code=fault.status, headers=fault.headers)
        response: Response = await call_next(request)
        return response

    @app.exception_handler(EmulatorHTTPError)
    async def carto_error(request: Request, exc: EmulatorHTTPError) -> JSONResponse:
        return error_response(exc, state.quirks)

    for module_name in ROUTER_MODULES:
        app.include_router(importlib.import_module(module_name).router)
    return app


class CartoEmulator:
    """Runs the emulator in a background thread on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token_lifetime: int = 86400,
        dw_token_lifetime: int = 3600,
        quirks: dict[str, Any] | None = None,
        **state_options: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.state = EmulatorState(
            token_lifetime=token_lifetime,
            dw_token_lifetime=dw_token_lifetime,
            quirks=Quirks.from_env().update(quirks or {}),
            **state_options,
        )
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # --------------------------------------------------------------- lifecycle
    def start(self) -> CartoEmulator:
        """Bind, start serving, and return once the server answers."""
        import uvicorn

        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="carto-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the CARTO emulator did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> CartoEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --------------------------------------------------------------- where and who
    @property
    def url(self) -> str:
        """Base URL; it is both the API base URL and the auth URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    api_base_url = auth_url = url

    @property
    def client_id(self) -> str:
        return DEFAULT_CLIENT_ID

    @property
    def client_secret(self) -> str:
        return DEFAULT_CLIENT_SECRET

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Register another M2M client."""
        with self.state.lock:
            self.state.clients[client_id] = client_secret

    def credentials(self, **overrides: str) -> dict[str, str]:
        """The content of a ``carto_credentials.json`` for the default client."""
        data = {
            "api_base_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "auth_url": self.url,
        }
        data.update(overrides)
        return data

    def airflow_connection(self, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (JSON form) for the default client; ``extra`` adds connection extras.

        The extras point everything at the emulator: the auth server and the Data Warehouse's BigQuery
        endpoint (without it, ``get_carto_dw_client()`` would go to Google).
        """
        return {
            "conn_type": "carto",
            "host": self.url,
            "login": self.client_id,
            "password": self.client_secret,
            "extra": {"auth_url": self.url, "bigquery_api_endpoint": self.url, **extra},
        }

    def issue_api_token(
        self, connections: tuple[str, ...] = ("carto_dw",), apis: tuple[str, ...] = ("sql", "imports", "lds")
    ) -> str:
        """An API access token with a grant on every source of ``connections`` and ``apis`` allowed,
        as a user would create in CARTO Workspace > Developers (no Tokens API call is counted)."""
        from carto_provider.testing.routes.tokens import mint

        body = {
            "grants": [{"connection_name": c, "source": "*"} for c in connections],
            "allowed_apis": list(apis),
        }
        return mint(self.state, "emulator-user", body)[0]

    def api_token_connection(self, token: str, **extra: Any) -> dict[str, Any]:
        """An Airflow connection (JSON form) of ``auth_type`` ``api_token`` with ``token``."""
        return {
            "conn_type": "carto",
            "host": self.url,
            "password": token,
            "extra": {
                "auth_type": "api_token",
                "auth_url": self.url,
                "bigquery_api_endpoint": self.url,
                **extra,
            },
        }

    def airflow_connection_json(self, **extra: Any) -> str:
        """:meth:`airflow_connection` serialised, the value of ``AIRFLOW_CONN_CARTO_DEFAULT``."""
        return json.dumps(self.airflow_connection(**extra))

    # --------------------------------------------------------------- observing and scripting
    def calls(self, pattern: str) -> int:
        """How many requests matched ``"METHOD /path"`` (fnmatch wildcards), faulted ones included."""
        return self.state.calls_matching(pattern)

    def events(self, event: str, subject: str | None = None) -> int:
        """How many times a route recorded ``event`` (e.g. ``"m2m_token"``), for one subject or all."""
        with self.state.lock:
            return sum(n for (e, s), n in self.state.events.items() if e == event and subject in (None, s))

    def token_requests(self, client_id: str | None = None) -> int:
        """Tokens issued by the client-credentials grant (optionally for one client)."""
        return self.events("m2m_token", client_id)

    def token_endpoint_requests(self) -> int:
        """Requests to the token endpoint (``POST /oauth/token``), answered or refused."""
        return self.calls("POST /oauth/token")

    def add_fault(
        self,
        pattern: str,
        status: int | None = None,
        *,
        times: int = 1,
        delay: float = 0.0,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``times`` requests matching ``pattern`` with ``status`` (after ``delay`` s)."""
        with self.state.lock:
            self.state.faults.append(Fault(pattern, status, times, delay, dict(headers or {}), body))

    def set_latency(self, pattern: str, seconds: float) -> None:
        """Add ``seconds`` to every request matching ``pattern`` (0 removes it)."""
        with self.state.lock:
            if seconds:
                self.state.latency[pattern] = seconds
            else:
                self.state.latency.pop(pattern, None)

    @property
    def quirks(self) -> Quirks:
        """The unpleasant modes in force (:mod:`carto_provider.testing.quirks`)."""
        return self.state.quirks

    def set_quirks(self, **changes: Any) -> Quirks:
        """Switch unpleasant modes, e.g. ``set_quirks(job_id_differs=True)``."""
        with self.state.lock:
            return self.state.quirks.update(changes)

    def revoke(self, token: str) -> None:
        """Make an issued token invalid (the API will answer 401)."""
        self.state.revoke(token)
