"""M2M authentication over real HTTP: the request CARTO expects, retries, fail-fast errors, no leaks."""

from __future__ import annotations

import json
import logging
import re
import socket

import pytest
import requests

from carto_provider.api.retry import CartoRetryPolicy, RetryableStatus, RetryAfterWait, parse_retry_after
from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.settings import AuthSettings, M2MCredentials
from carto_provider.errors import CredentialsConfigError, CredentialsError, CredentialsFileError
from tests.helpers import write_credentials


def resolve_auth_url(explicit: str | None = None) -> str:
    return AuthSettings.from_environment().resolve_auth_url(explicit)


def normalize_base_url(url: str) -> str:
    return AuthSettings.from_environment().check_base_url(url)


FAST = CartoRetryPolicy(attempts=5, initial_wait=0.01, max_wait=0.05, max_retry_after=2.0)


def make_auth(emulator, tmp_path, **kwargs) -> CartoAuth:
    kwargs.setdefault("retry_policy", FAST)
    return CartoAuth.from_m2m(
        write_credentials(tmp_path / "creds.json", emulator), cache_filepath=tmp_path / "t.json", **kwargs
    )


# --------------------------------------------------------------------------- the seed's API


def test_from_m2m_gives_token_base_url_and_dw_credentials(carto_emulator, tmp_path):
    auth = make_auth(carto_emulator, tmp_path)
    token = auth.get_access_token()
    assert token.count(".") == 2  # a JWT
    assert auth.get_api_base_url() == carto_emulator.url
    project, dw_token = auth.get_carto_dw_credentials()
    assert project == "carto-dw-ac-emulator" and dw_token
    assert carto_emulator.token_requests() == 1


def test_token_request_is_the_client_credentials_form_with_carto_audience(carto_emulator, tmp_path):
    body = []

    from carto_provider.testing.routes import auth as auth_routes

    original = auth_routes.GRANT_HANDLERS["client_credentials"]

    async def spy(request, form):
        body.append((request.headers.get("content-type"), dict(form)))
        return await original(request, form)

    auth_routes.GRANT_HANDLERS["client_credentials"] = spy
    try:
        make_auth(carto_emulator, tmp_path).get_access_token()
    finally:
        auth_routes.GRANT_HANDLERS["client_credentials"] = original
    content_type, form = body[0]
    assert content_type.startswith("application/x-www-form-urlencoded")
    assert form == {
        "grant_type": "client_credentials",
        "client_id": carto_emulator.client_id,
        "client_secret": carto_emulator.client_secret,
        "audience": "carto-cloud-native-api",
    }


def test_auth_url_comes_from_file_then_env_then_default(monkeypatch, tmp_path):
    monkeypatch.delenv("CARTO_AUTH_URL", raising=False)
    assert resolve_auth_url() == "https://auth.carto.com"
    monkeypatch.setenv("CARTO_AUTH_URL", "http://127.0.0.1:9/")
    assert resolve_auth_url() == "http://127.0.0.1:9"
    assert resolve_auth_url("https://auth.example.com/oauth/token") == "https://auth.example.com"
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"api_base_url": "https://a.example", "client_id": "i", "client_secret": "s"}))
    assert M2MCredentials.from_file(path).auth_url == "http://127.0.0.1:9"
    path.write_text(
        json.dumps(
            {"api_base_url": "a.example", "client_id": "i", "client_secret": "s", "auth_url": "https://x.io"}
        )
    )
    creds = M2MCredentials.from_file(path)
    assert creds.auth_url == "https://x.io" and creds.api_base_url == "https://a.example"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "content, expected",
    [
        ({"client_id": "i", "client_secret": "s"}, "missing the required field 'api_base_url'"),
        ({"api_base_url": "https://a.io", "client_secret": "s"}, "missing the required field 'client_id'"),
        ({"api_base_url": "https://a.io", "client_id": "i"}, "missing the required field 'client_secret'"),
        (
            {"api_base_url": "https://a.io", "client_id": " ", "client_secret": "s"},
            "empty or non-text value for 'client_id'",
        ),
        (
            {"api_base_url": "http://carto.example.com", "client_id": "i", "client_secret": "s"},
            "uses http://",
        ),
        ({"api_base_url": "ftp://a.io", "client_id": "i", "client_secret": "s"}, "is not an http(s) URL"),
        ([1, 2], "must contain a JSON object"),
    ],
)
def test_bad_credentials_files_name_the_field_and_the_file(tmp_path, content, expected):
    path = tmp_path / "carto_credentials.json"
    path.write_text(json.dumps(content))
    with pytest.raises(CredentialsFileError) as info:
        CartoAuth.from_m2m(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_a_file_that_is_not_json_names_the_file(tmp_path):
    path = tmp_path / "carto_credentials.json"
    path.write_text("api_base_url: https://x\nclient_secret: hunter2-secret")
    with pytest.raises(CredentialsFileError, match="is not valid JSON") as info:
        CartoAuth.from_m2m(path)
    assert str(path) in str(info.value) and "hunter2" not in str(info.value)


def test_a_missing_file_names_the_file(tmp_path):
    with pytest.raises(CredentialsFileError, match="does not exist"):
        CartoAuth.from_m2m(tmp_path / "nope.json")


@pytest.mark.parametrize(
    "url, normalized",
    [
        ("gcp-us-east1.api.carto.com", "https://gcp-us-east1.api.carto.com"),
        ("https://gcp-us-east1.api.carto.com/", "https://gcp-us-east1.api.carto.com"),
        ("http://localhost:8808", "http://localhost:8808"),
        ("http://127.0.0.1:8808/", "http://127.0.0.1:8808"),
        ("http://[::1]:8808", "http://[::1]:8808"),
        ("https://carto.example.com/api", "https://carto.example.com/api"),
    ],
)
def test_base_urls_are_normalized(url, normalized):
    assert normalize_base_url(url) == normalized


def test_http_is_refused_for_non_loopback_hosts():
    with pytest.raises(CredentialsConfigError, match="use https://"):
        normalize_base_url("http://gcp-us-east1.api.carto.com")
    with pytest.raises(CredentialsConfigError, match="must not carry"):
        normalize_base_url("https://user:pw@carto.example.com")


# --------------------------------------------------------------------------- retries and failures


def test_transient_503s_are_retried(carto_emulator, tmp_path):
    carto_emulator.add_fault("POST /oauth/token", 503, times=2)
    assert make_auth(carto_emulator, tmp_path).get_access_token()
    assert carto_emulator.calls("POST /oauth/token") == 3


def test_429_is_retried_honouring_retry_after(carto_emulator, tmp_path, caplog):
    carto_emulator.add_fault("POST /oauth/token", 429, headers={"Retry-After": "1"})
    with caplog.at_level(logging.WARNING, logger="carto_provider"):
        assert make_auth(carto_emulator, tmp_path).get_access_token()
    assert carto_emulator.calls("POST /oauth/token") == 2
    assert "HTTP 429" in caplog.text and "in 1.0 s" in caplog.text


def test_retry_after_is_parsed_and_capped():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = "3600"

    class Outcome:
        def exception(self):
            return RetryableStatus(response)

    class State:
        outcome = Outcome()
        attempt_number = 1

    assert RetryAfterWait(FAST)(State()) == FAST.max_retry_after  # type: ignore[arg-type]


def test_persistent_5xx_gives_up_after_the_attempts_with_the_status(carto_emulator, tmp_path):
    carto_emulator.add_fault("POST /oauth/token", 502, times=10)
    with pytest.raises(CredentialsError, match="HTTP 502") as info:
        make_auth(carto_emulator, tmp_path).get_access_token()
    assert info.value.status == 502
    assert carto_emulator.calls("POST /oauth/token") == FAST.attempts


@pytest.mark.parametrize(
    "status, error, description",
    [
        (400, "invalid_client", "Client authentication failed"),
        (401, "access_denied", "Unauthorized"),
        (403, "access_denied", "Service not found: carto-cloud-native-api"),
    ],
)
def test_client_errors_fail_fast_with_the_servers_error(carto_emulator, tmp_path, status, error, description):
    carto_emulator.add_fault(
        "POST /oauth/token", status, body={"error": error, "error_description": description}
    )
    with pytest.raises(CredentialsError) as info:
        make_auth(carto_emulator, tmp_path).get_access_token()
    assert carto_emulator.calls("POST /oauth/token") == 1
    exc = info.value
    assert (exc.status, exc.error, exc.error_description) == (status, error, description)
    assert error in str(exc) and description in str(exc) and f"HTTP {status}" in str(exc)
    assert "Check" in str(exc)


def test_a_wrong_secret_is_refused_by_the_emulator(carto_emulator, tmp_path):
    path = write_credentials(tmp_path / "c.json", carto_emulator, client_secret="wrong-secret-123")
    with pytest.raises(CredentialsError, match="client secret") as info:
        CartoAuth.from_m2m(path, cache_filepath=tmp_path / "t.json").get_access_token()
    assert info.value.status == 401 and "wrong-secret-123" not in str(info.value)


def test_a_server_that_never_answers_times_out(carto_emulator, tmp_path):
    carto_emulator.add_fault("POST /oauth/token", None, delay=5, times=10)
    policy = CartoRetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.01)
    with pytest.raises(CredentialsError, match="timed out"):
        make_auth(carto_emulator, tmp_path, retry_policy=policy, timeout=(2, 0.3)).get_access_token()
    assert carto_emulator.calls("POST /oauth/token") == 2


def test_an_unreachable_auth_server_names_the_auth_url(carto_emulator, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    path = write_credentials(tmp_path / "c.json", carto_emulator, auth_url=dead)
    with pytest.raises(CredentialsError, match="could not be reached") as info:
        CartoAuth.from_m2m(path, cache_filepath=tmp_path / "t.json", retry_policy=FAST).get_access_token()
    assert dead in str(info.value)


def test_an_api_401_refreshes_the_token_once_and_retries_once(carto_emulator, tmp_path):
    auth = make_auth(carto_emulator, tmp_path)
    carto_emulator.revoke(auth.get_access_token())
    assert auth.get_carto_dw_credentials()
    assert carto_emulator.token_requests() == 2
    assert carto_emulator.calls("GET /v3/connections/carto-dw/token") == 2


# --------------------------------------------------------------------------- secrets never leak


def test_no_secret_or_token_in_logs_messages_or_reprs(carto_emulator, tmp_path, caplog):
    secret = carto_emulator.client_secret
    seen_tokens: list[str] = []
    with caplog.at_level(logging.DEBUG):
        carto_emulator.add_fault("POST /oauth/token", 503)
        auth = make_auth(carto_emulator, tmp_path)
        seen_tokens.append(auth.get_access_token())
        seen_tokens.append(auth.get_carto_dw_credentials()[1])
        carto_emulator.revoke(seen_tokens[0])
        seen_tokens.append(auth.get_carto_dw_credentials()[1])
        seen_tokens.append(auth.get_access_token())
        bad = write_credentials(tmp_path / "bad.json", carto_emulator, client_secret="bad-" + secret)
        with pytest.raises(CredentialsError) as info:
            CartoAuth.from_m2m(bad, cache_filepath=tmp_path / "t.json").get_access_token()
        texts = [caplog.text, repr(auth), repr(auth.cache), str(info.value), repr(info.value)]
        texts.append(repr(M2MCredentials.from_file(tmp_path / "creds.json")))
    assert "New CARTO access token" in caplog.text  # the INFO line with a fingerprint is there
    for text in texts:
        assert secret not in text
        for token in seen_tokens:
            assert token not in text


def test_one_info_line_per_real_fetch_with_a_fingerprint(carto_emulator, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="carto_provider"):
        auth = make_auth(carto_emulator, tmp_path)
        token = auth.get_access_token()
        for _ in range(5):
            auth.get_access_token()
    # This package's lines (httpx, the transport's client, logs each request on its own logger).
    infos = [
        r.getMessage() for r in caplog.records if r.levelno == logging.INFO and r.name.startswith("carto_")
    ]
    assert len(infos) == 1
    from carto_provider.auth.tokens import fingerprint

    assert f"fp={fingerprint(token)}" in infos[0]
    assert re.search(r"expires in 86(399|400) s", infos[0])  # the JWT's whole-second exp may round down
