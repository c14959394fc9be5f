"""The DW BigQuery session's retries, counted on a real socket: connection failures are tried
``BIGQUERY_CONNECT_RETRY.attempts`` times through the package's retry configuration; a read timeout
(the request may have been sent) is never repeated."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials

from carto_provider.auth.dw._session import BIGQUERY_CONNECT_RETRY, dw_session
from carto_provider.errors import BigQueryEndpointError


class Listener:
    """A loopback socket that accepts connections and either closes them at once or keeps them silent."""

    def __init__(self, *, close: bool) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.close = close
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.close:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()  # a reset: requests raises ConnectionError
            else:
                self.held.append(conn)


@pytest.fixture
def listener(request: pytest.FixtureRequest) -> Iterator[Listener]:
    server = Listener(close=request.param == "resets")
    server.thread.start()
    yield server
    server.stopping.set()
    server.thread.join(5)
    for conn in server.held:
        conn.close()
    server.server.close()


@pytest.mark.parametrize("listener", ["resets"], indirect=True)
def test_connection_failures_are_retried_then_name_the_endpoint(listener: Listener) -> None:
    session = dw_session(AnonymousCredentials(), endpoint=listener.url, timeout=(2.0, 2.0))
    with pytest.raises(BigQueryEndpointError, match=rf"Could not reach the BigQuery endpoint {listener.url}"):
        session.request("GET", f"{listener.url}/bigquery/v2/projects/p/datasets")
    assert listener.accepted == BIGQUERY_CONNECT_RETRY.attempts == 3


@pytest.mark.parametrize("listener", ["silent"], indirect=True)
def test_a_read_timeout_is_not_repeated(listener: Listener) -> None:
    session = dw_session(AnonymousCredentials(), endpoint=listener.url, timeout=(2.0, 0.3))
    with pytest.raises(BigQueryEndpointError, match=rf"{listener.url} did not answer POST within"):
        session.request("POST", f"{listener.url}/bigquery/v2/projects/p/jobs", data=b"{}")
    assert listener.accepted == 1
