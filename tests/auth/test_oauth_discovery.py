"""API base URL discovery after a login: accounts endpoint, then the tenant's config.yaml."""

from __future__ import annotations

import socket

import pytest

from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.auth.login.discovery import config_url, discover_account
from carto_provider.auth.settings import ACCOUNTS_URL_ENV, DEFAULT_ACCOUNTS_URL, AuthSettings
from carto_provider.errors import CartoAPIError


def resolve_accounts_url(auth_url: str) -> str:
    return AuthSettings.from_environment().accounts_url_for(auth_url)


FAST = CartoRetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)
HINT = "--api-base-url"


@pytest.fixture(autouse=True)
def no_accounts_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ACCOUNTS_URL_ENV, raising=False)


def user_token(carto) -> str:
    return carto.state.issue_token("oauth", "auth0|someone", 3600, {"sub": "auth0|someone"})


def discover(carto, token: str | None = None, *, auth_url: str | None = None, **kwargs):
    """Discovery as the login runs it: with the settings its edge resolved from the environment."""
    kwargs.setdefault("policy", FAST)
    kwargs.setdefault("settings", AuthSettings.from_environment())
    return discover_account(token or user_token(carto), auth_url=auth_url or carto.url, **kwargs)


def test_discovery_through_the_emulator(carto_emulator) -> None:
    account = discover(carto_emulator)
    assert account.api_base_url == carto_emulator.url
    assert account.tenant_domain == carto_emulator.url.removeprefix("http://")
    assert carto_emulator.calls("GET /accounts") == 1 and carto_emulator.calls("GET /config.yaml") == 1


def test_the_accounts_url_is_carto_s_unless_overridden_or_on_loopback(monkeypatch) -> None:
    assert resolve_accounts_url("https://auth.carto.com") == DEFAULT_ACCOUNTS_URL
    assert resolve_accounts_url("http://127.0.0.1:8808") == "http://127.0.0.1:8808/accounts"
    monkeypatch.setenv(ACCOUNTS_URL_ENV, "https://accounts.example.com/accounts")
    assert resolve_accounts_url("https://auth.carto.com") == "https://accounts.example.com/accounts"
    monkeypatch.setenv(ACCOUNTS_URL_ENV, "http://accounts.example.com/accounts")
    with pytest.raises(ValueError, match="http://"):
        resolve_accounts_url("https://auth.carto.com")


def test_the_env_override_is_used(carto_emulator, monkeypatch) -> None:
    monkeypatch.setenv(ACCOUNTS_URL_ENV, f"{carto_emulator.url}/accounts")
    # A real auth URL would mean CARTO's accounts service; the override keeps it on the emulator.
    assert discover(carto_emulator, auth_url="https://auth.carto.com").api_base_url == carto_emulator.url


def test_config_yaml_is_https_except_on_loopback() -> None:
    assert config_url("clausa.app.carto.com") == "https://clausa.app.carto.com/config.yaml"
    assert config_url("127.0.0.1:8808") == "http://127.0.0.1:8808/config.yaml"
    assert config_url("localhost:1") == "http://localhost:1/config.yaml"
    for bad in ("evil.example/path", "user@host", "host?x=1", "", "-bad.example"):
        with pytest.raises(CartoAPIError, match="unusable tenant_domain"):
            config_url(bad)


def test_a_refused_token_is_a_clear_error(carto_emulator) -> None:
    with pytest.raises(CartoAPIError, match=f"answered HTTP 401 .*{HINT}") as raised:
        discover(carto_emulator, "not-a-token")
    assert raised.value.status == 401
    assert carto_emulator.calls("GET /accounts") == 1  # 401 is not retried


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        ("GET /accounts", {"error": "Account not found"}, "refused: Account not found"),
        ("GET /accounts", {"id": "ac_x"}, "no tenant_domain"),
        ("GET /accounts", ["not", "an", "object"], "did not answer a JSON object"),
        ("GET /accounts", {"tenant_domain": "evil.example/x"}, "unusable tenant_domain"),
        ("GET /config.yaml", {"apis": {}}, "has no apis.baseUrl"),
        ("GET /config.yaml", {"apis": {"baseUrl": "http://plain.example"}}, "uses http://"),
    ],
)
def test_unusable_answers_are_clear_errors(carto_emulator, route, body, message) -> None:
    carto_emulator.add_fault(route, 200, body=body)
    with pytest.raises(CartoAPIError, match=message) as raised:
        discover(carto_emulator)
    assert HINT in str(raised.value)


def test_transient_failures_are_retried(carto_emulator) -> None:
    carto_emulator.add_fault("GET /accounts", 503, times=2)
    assert discover(carto_emulator).api_base_url == carto_emulator.url
    assert carto_emulator.calls("GET /accounts") == 3


def test_an_unreachable_service_is_a_clear_error(carto_emulator, monkeypatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv(ACCOUNTS_URL_ENV, f"http://127.0.0.1:{closed_port}/accounts")
    with pytest.raises(CartoAPIError, match=f"could not be reached .*{HINT}"):
        discover(carto_emulator)


def test_a_silent_service_times_out(carto_emulator) -> None:
    carto_emulator.set_latency("GET /config.yaml", 1.5)
    with pytest.raises(CartoAPIError, match=r"config\.yaml timed out"):
        discover(carto_emulator, timeout=(2.0, 0.3), policy=CartoRetryPolicy(attempts=1))
