"""The token path against a hostile or broken server, over real HTTP on loopback.

Redirects are never followed (the secret reaches the configured host once, the redirect target
never); ``expires_in`` must be a finite number in (0, 1 year]; huge or deeply nested answers are
refused cleanly; secrets a server echoes back never reach a message or a log line.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.errors import CartoAPIError, CredentialsError
from tests.auth.scripted_server import Answer, Received, ScriptedServer, token_answer

FAST = CartoRetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02, max_retry_after=0.1)
SECRET = "s3cr3t-Value/with+odd=chars"


def no_token_cached(path: Path) -> bool:
    """Nothing usable was written (a failed fetch may be recorded for waiting processes, no token)."""
    if not path.exists():
        return True
    return not any("access_token" in entry for entry in json.loads(path.read_text())["entries"].values())


def make_auth(auth_url: str, tmp_path: Path, api_base_url: str = "http://127.0.0.1:9") -> CartoAuth:
    return CartoAuth.from_values(
        api_base_url,
        "client-1",
        SECRET,
        auth_url=auth_url,
        cache_filepath=tmp_path / "cache" / "t.json",
        retry_policy=FAST,
    )


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_from_the_token_endpoint_is_refused_and_never_followed(tmp_path, status):
    with ScriptedServer(lambda r: token_answer()) as elsewhere:
        target = f"{elsewhere.url.replace('127.0.0.1', 'localhost')}/oauth/token"
        redirect = Answer(status, b"", {"Location": target})
        with ScriptedServer(lambda r: redirect) as auth_server, pytest.raises(CredentialsError) as raised:
            make_auth(auth_server.url, tmp_path).get_access_token()
    message = str(raised.value)
    assert f"HTTP {status}" in message and "'localhost'" in message and "never followed" in message
    assert raised.value.status == status
    assert elsewhere.received == []  # neither the secret nor anything else went there
    assert [r.form["client_secret"] for r in auth_server.received] == [SECRET]  # sent once
    assert no_token_cached(tmp_path / "cache" / "t.json")


@pytest.mark.parametrize(
    "expires_in",
    ["NaN", "Infinity", "-Infinity", "1e300", "0", "-5", "31536001", '"soon"', "null", "true", "[3600]"],
)
def test_expires_in_must_be_a_finite_number_up_to_one_year(tmp_path, expires_in):
    body = b'{"access_token": "tok-abc.def.ghi", "expires_in": %s}' % expires_in.encode()
    answer = Answer(200, body, {"Content-Type": "application/json"})
    with (
        ScriptedServer(lambda r: answer) as server,
        pytest.raises(CredentialsError, match="expires_in") as raised,
    ):
        make_auth(server.url, tmp_path).get_access_token()
    assert "one year" in str(raised.value)
    assert no_token_cached(tmp_path / "cache" / "t.json")


@pytest.mark.parametrize("expires_in", [1, 3600, "3600", 31536000])
def test_expires_in_within_the_rule_is_accepted(tmp_path, expires_in):
    with ScriptedServer(lambda r: token_answer(expires_in=expires_in)) as server:
        token = make_auth(server.url, tmp_path).get_token()
    assert token.lifetime == pytest.approx(float(expires_in), abs=2)


def test_an_answer_above_one_mebibyte_is_refused_cleanly(tmp_path):
    huge = json.dumps({"access_token": "x" * (1024 * 1024 + 10), "expires_in": 3600}).encode()
    with (
        ScriptedServer(lambda r: Answer(200, huge)) as server,
        pytest.raises(CredentialsError, match="1024 KiB"),
    ):
        make_auth(server.url, tmp_path).get_access_token()


@pytest.mark.parametrize("status", [200, 400])
def test_deeply_nested_json_is_refused_without_recursion_error(tmp_path, status):
    nested = b"[" * 200_000 + b"]" * 200_000
    with (
        ScriptedServer(lambda r: Answer(status, nested)) as server,
        pytest.raises(CredentialsError) as raised,
    ):
        make_auth(server.url, tmp_path).get_access_token()
    assert not isinstance(raised.value.__context__, RecursionError)
    if status == 200:
        assert "nests deeper than" in str(raised.value)


def _echo(request: Received) -> Answer:
    """An auth server that puts the whole request in its error description (JSON, raw, URL-encoded)."""
    form = request.form
    text = f"bad request {json.dumps(form)} raw={request.body.decode()} secret={form.get('client_secret')}"
    return Answer(400, {"error": f"invalid_request {form.get('client_secret')}", "error_description": text})


def test_secrets_echoed_by_the_server_are_redacted_from_messages_and_logs(tmp_path, caplog):
    with (
        caplog.at_level(logging.DEBUG),
        ScriptedServer(_echo) as server,
        pytest.raises(CredentialsError) as raised,
    ):
        make_auth(server.url, tmp_path).get_access_token()
    error = raised.value
    for text in (str(error), error.error or "", error.error_description or "", caplog.text):
        assert SECRET not in text
        assert "s3cr3t" not in text  # nor its URL-encoded form
    assert "***" in str(error) and "HTTP 400" in str(error)


def test_a_secret_echoed_in_a_bad_expires_in_is_redacted(tmp_path):
    def answer(request: Received) -> Answer:
        return token_answer(expires_in=request.form["client_secret"])

    with ScriptedServer(answer) as server, pytest.raises(CredentialsError, match="expires_in") as raised:
        make_auth(server.url, tmp_path).get_access_token()
    assert "s3cr3t" not in str(raised.value)


def test_an_api_redirect_is_not_followed_and_the_token_stays_home(tmp_path):
    with ScriptedServer(lambda r: Answer(200, {"ok": True})) as elsewhere:
        redirect = Answer(307, b"", {"Location": f"{elsewhere.url}/v3/x"})
        with (
            ScriptedServer(lambda r: redirect) as api,
            ScriptedServer(lambda r: token_answer()) as auth_server,
        ):
            auth = make_auth(auth_server.url, tmp_path, api_base_url=api.url)
            with pytest.raises(CartoAPIError, match=r"redirects to host '127\.0\.0\.1'"):
                auth.request("GET", "/v3/connections")
    assert elsewhere.received == []
    assert len(api.received) == 1


def test_discovery_redirects_are_refused_as_credentials_errors(tmp_path):
    from carto_provider.auth.login.discovery import discover_account

    redirect = Answer(302, b"", {"Location": "https://evil.example/accounts"})
    with (
        ScriptedServer(lambda r: redirect) as server,
        pytest.raises(CredentialsError, match=r"'evil\.example'"),
    ):
        discover_account("tok", auth_url=server.url, policy=FAST)
