"""``CartoAuthHook.test_connection()``: the Test button and ``airflow connections test``.

Real HTTP against the emulator. Every failure must come back as ``(False, message)`` that says what to
fix, never as an exception, and never with a secret or a token in it.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import webbrowser
from collections.abc import Iterator

import pytest

from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.testing import CartoEmulator

WRONG_SECRET = "not-the-secret-0123456789"


def use_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path, conn_id: str = "carto_default", **fields
) -> str:
    """Define ``conn_id`` (JSON env var) from ``fields``: conn_type carto plus a private token cache."""
    extra = {"cache_dir": str(tmp_path / "token-cache"), **fields.pop("extra", {})}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "carto", **fields, "extra": extra})
    )
    return conn_id


def emulator_fields(emulator: CartoEmulator, **overrides) -> dict:
    fields = {
        "host": emulator.url,
        "login": emulator.client_id,
        "password": emulator.client_secret,
        "extra": {"auth_url": emulator.url},
    }
    return {**fields, **overrides}


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_nothing_secret(message: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in message


def test_success_says_where_and_until_when(monkeypatch, tmp_path, carto_emulator):
    use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator))
    ok, message = CartoAuthHook().test_connection()
    assert ok, message
    assert message.startswith(f"Connected to CARTO at {carto_emulator.url} (M2M client emulator-client-id")
    assert "token valid until" in message and "1 CARTO connection(s) visible" in message
    assert carto_emulator.token_requests() == 1
    assert carto_emulator.calls("GET /v3/connections") == 1
    token = CartoAuthHook().get_access_token()  # the test's token was cached for the tasks
    assert carto_emulator.token_requests() == 1
    assert_nothing_secret(message, carto_emulator.client_secret, token)


def test_wrong_secret_says_to_check_the_client_secret(monkeypatch, tmp_path, carto_emulator):
    use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator, password=WRONG_SECRET))
    ok, message = CartoAuthHook().test_connection()
    assert not ok
    assert message.startswith("Authentication failed: CARTO refused the client credentials")
    assert "HTTP 401" in message and "Check the client id and client secret" in message
    assert carto_emulator.calls("GET /v3/connections") == 0
    assert_nothing_secret(message, WRONG_SECRET, carto_emulator.client_secret)


def test_wrong_region_says_to_check_the_api_base_url(monkeypatch, tmp_path, carto_emulator):
    """The token is CARTO's, but the API of another region does not know it."""
    with CartoEmulator() as other_region:
        use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator, host=other_region.url))
        ok, message = CartoAuthHook().test_connection()
        assert other_region.calls("GET /v3/connections") >= 1
    assert not ok
    assert message.startswith("Token obtained, but the CARTO API call failed")
    assert "HTTP 401" in message and "API base URL is your account's region" in message
    assert_nothing_secret(message, carto_emulator.client_secret)


def test_unreachable_auth_server_says_to_check_the_auth_url(monkeypatch, tmp_path, carto_emulator):
    nowhere = closed_port_url()
    use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator, extra={"auth_url": nowhere}))
    ok, message = CartoAuthHook().test_connection()
    assert not ok
    assert f"The CARTO auth server at {nowhere} could not be reached" in message
    assert "Check the auth URL" in message


def test_unreachable_api_says_to_check_the_api_base_url(monkeypatch, tmp_path, carto_emulator):
    nowhere = closed_port_url()
    use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator, host=nowhere))
    ok, message = CartoAuthHook().test_connection()
    assert not ok
    assert f"The CARTO API at {nowhere} could not be reached" in message
    assert "Check the API base URL" in message


@pytest.fixture
def web_page_server() -> Iterator[str]:
    """A web server that answers every GET with an HTML page, like CARTO's Workspace at app.carto.com."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>CARTO Workspace</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=10)


def test_a_web_page_instead_of_the_api_says_to_check_the_api_base_url(
    monkeypatch, tmp_path, carto_emulator, web_page_server
):
    use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator, host=web_page_server))
    ok, message = CartoAuthHook().test_connection()
    assert not ok
    assert "not CARTO's JSON" in message and "check the API Base URL" in message


def test_auth_server_outage_answers_quickly_with_the_status(monkeypatch, tmp_path, carto_emulator):
    carto_emulator.add_fault("POST /oauth/token", 503, times=10)
    use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator))
    ok, message = CartoAuthHook().test_connection()
    assert not ok
    assert message.startswith("CARTO's auth server is unavailable (HTTP 503)") and "try again" in message
    assert carto_emulator.calls("POST /oauth/token") == 2  # the Test button retries once, not five times


def test_oauth_without_a_cached_login_never_opens_a_browser(monkeypatch, tmp_path, carto_emulator):
    opened: list[str] = []
    for name in ("open", "open_new", "open_new_tab"):
        monkeypatch.setattr(webbrowser, name, lambda url, *a, **k: opened.append(url) or True)
    use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator, extra={"auth_type": "oauth"}))
    ok, message = CartoAuthHook().test_connection()
    assert not ok
    assert "carto-provider login" in message
    assert opened == []
    assert carto_emulator.calls("*") == 0


def test_missing_secret_names_the_field(monkeypatch, tmp_path, carto_emulator):
    use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator, password=None))
    ok, message = CartoAuthHook().test_connection()
    assert not ok
    assert message.startswith("Connection settings:") and "Client Secret (password)" in message


def test_undefined_connection_is_reported_not_raised():
    ok, message = CartoAuthHook("carto_nowhere").test_connection()
    assert not ok
    assert "carto_nowhere" in message


def test_unexpected_errors_are_reported_without_the_secret(monkeypatch, tmp_path, carto_emulator):
    """A unit test of the guard: whatever goes wrong inside, the caller gets (False, scrubbed message)."""

    def explode(*args, **kwargs):
        raise RuntimeError(f"boom near {carto_emulator.client_secret}")

    monkeypatch.setattr(CartoAuthHook, "_build_auth", staticmethod(explode))
    use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator))
    ok, message = CartoAuthHook().test_connection()
    assert (ok, message) == (False, "Could not test the CARTO connection (RuntimeError: boom near ***)")


def test_a_one_letter_secret_does_not_garble_the_message(monkeypatch, tmp_path, carto_emulator):
    """Replacing the secret "e" everywhere gave "Auth***ntication fail***d" (issue 24)."""
    use_connection(monkeypatch, tmp_path, **emulator_fields(carto_emulator, password="e"))
    ok, message = CartoAuthHook().test_connection()
    assert not ok
    assert message.startswith("Authentication failed: CARTO refused the client credentials"), message
    assert "***" not in message
