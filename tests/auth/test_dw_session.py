"""The DW BigQuery session's retries, counted on a real socket: a connection that could not be set up
is tried ``BIGQUERY_CONNECT_RETRY.attempts`` times through the package's retry configuration; a reset
or a read timeout after the request was sent is never repeated (BigQuery may have received it)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials

from carto_provider.auth.dw._session import BIGQUERY_CONNECT_RETRY, dw_session
from carto_provider.errors import BigQueryEndpointError


class Listener:
    """A loopback socket that accepts connections and either resets them once the request has
    arrived (``close``) or keeps them silent."""

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
                conn.settimeout(5)
                conn.recv(65536)  # the request arrived: from now on the server may have acted on it
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()  # a reset: requests raises ConnectionError
            else:
                self.held.append(conn)


@pytest.fixture
def listener(request: pytest.FixtureRequest) -> Iterator[Listener]:
    server = Listener(close=request.param == "hangs up")
    server.thread.start()
    yield server
    server.stopping.set()
    server.thread.join(5)
    for conn in server.held:
        conn.close()
    server.server.close()


def test_a_connection_never_set_up_is_retried_then_names_the_endpoint(caplog) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed below: connections are refused
    session = dw_session(AnonymousCredentials(), endpoint=url, timeout=(2.0, 2.0))
    refused = pytest.raises(BigQueryEndpointError, match=rf"Could not reach the BigQuery endpoint {url}")
    with caplog.at_level("WARNING", logger="carto_provider.api.retry"), refused:
        session.request("GET", f"{url}/bigquery/v2/projects/p/datasets")
    retries = [r for r in caplog.records if "BigQuery call" in r.getMessage()]
    assert len(retries) == BIGQUERY_CONNECT_RETRY.attempts - 1 == 2


@pytest.mark.parametrize("listener", ["hangs up"], indirect=True)
def test_a_connection_reset_after_sending_is_not_repeated(listener: Listener) -> None:
    # The request went out on an accepted connection: BigQuery may have received the POST.
    session = dw_session(AnonymousCredentials(), endpoint=listener.url, timeout=(2.0, 2.0))
    with pytest.raises(BigQueryEndpointError, match=r"not repeated: it may have arrived"):
        session.request("POST", f"{listener.url}/bigquery/v2/projects/p/jobs", data=b"{}")
    assert listener.accepted == 1


@pytest.mark.parametrize("listener", ["silent"], indirect=True)
def test_a_read_timeout_is_not_repeated(listener: Listener) -> None:
    session = dw_session(AnonymousCredentials(), endpoint=listener.url, timeout=(2.0, 0.3))
    with pytest.raises(BigQueryEndpointError, match=rf"{listener.url} did not answer POST within"):
        session.request("POST", f"{listener.url}/bigquery/v2/projects/p/jobs", data=b"{}")
    assert listener.accepted == 1
