"""Settings resolved once, at the edge: ``AuthSettings.from_environment`` is the only reader of the
environment; the core takes what it is given; the Airflow-free core has no import cycle."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from carto_provider.api.retry import TOKEN_RETRY, CartoRetryPolicy
from carto_provider.auth.cache.policy import TokenCache
from carto_provider.auth.cache.stores import CacheKey
from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.login.discovery import discover_account
from carto_provider.auth.login.oauth import OAuthClient
from carto_provider.auth.settings import (
    ACCOUNTS_URL_ENV,
    AUTH_URL_ENV,
    CARTO_PUBLIC_CLIENT_ID,
    CLIENT_ID_ENV,
    DEFAULT_AUTH_URL,
    INSECURE_HTTP_HOSTS_ENV,
    AuthSettings,
    M2MCredentials,
)
from carto_provider.errors import CredentialsConfigError, CredentialsError

PACKAGE = Path(__file__).resolve().parents[2] / "carto_provider"
ONE_TRY = CartoRetryPolicy(attempts=1)
THREE_TRIES = CartoRetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02)
#: The environment reads left in the auth core, and why (see login.py): process context asked at the
#: moment a login would prompt, not settings.
CONTEXT_PROBES = {("flow.py", "DATABRICKS_RUNTIME_VERSION"), ("flow.py", "AIRFLOW_TASK_ENV")}


@pytest.fixture
def hostile_environment(monkeypatch: pytest.MonkeyPatch, unused_port: int) -> None:
    """Every variable set to something the tests below would notice if it were read."""
    monkeypatch.setenv(AUTH_URL_ENV, f"http://127.0.0.1:{unused_port}")
    monkeypatch.setenv(ACCOUNTS_URL_ENV, f"http://127.0.0.1:{unused_port}/accounts")
    monkeypatch.setenv(CLIENT_ID_ENV, "client-from-the-environment")
    monkeypatch.setenv(INSECURE_HTTP_HOSTS_ENV, "emu")


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_from_environment_reads_each_variable_over_the_defaults(monkeypatch) -> None:
    for name in (AUTH_URL_ENV, ACCOUNTS_URL_ENV, CLIENT_ID_ENV, INSECURE_HTTP_HOSTS_ENV):
        monkeypatch.delenv(name, raising=False)
    assert AuthSettings.from_environment() == AuthSettings()
    assert AuthSettings() == AuthSettings(
        DEFAULT_AUTH_URL, None, frozenset(), CARTO_PUBLIC_CLIENT_ID, TOKEN_RETRY
    )
    environ = {
        AUTH_URL_ENV: "http://emu:8808/oauth/token",
        ACCOUNTS_URL_ENV: "https://accounts.example.com/accounts/",
        CLIENT_ID_ENV: " other-client ",
        INSECURE_HTTP_HOSTS_ENV: "Emu, ,other",
    }
    settings = AuthSettings.from_environment(environ)
    assert settings.auth_url == "http://emu:8808"
    assert settings.accounts_url == "https://accounts.example.com/accounts"
    assert settings.oauth_client_id == "other-client"
    assert settings.insecure_http_hosts == {"emu", "other"}
    given = AuthSettings.from_environment(environ, auth_url="https://auth.example.com", token_retry=ONE_TRY)
    assert (given.auth_url, given.token_retry, given.oauth_client_id) == (
        "https://auth.example.com",
        ONE_TRY,
        "other-client",
    )


def test_a_bad_variable_is_refused_naming_it() -> None:
    with pytest.raises(CredentialsConfigError, match=r"\$CARTO_AUTH_URL.*https://"):
        AuthSettings.from_environment({AUTH_URL_ENV: "http://auth.example.com"})
    with pytest.raises(CredentialsConfigError, match=r"\$CARTO_ACCOUNTS_URL"):
        AuthSettings.from_environment({ACCOUNTS_URL_ENV: "ftp://accounts.example.com"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        AuthSettings().auth_url = "https://elsewhere.example"  # type: ignore[misc]


@pytest.mark.usefixtures("hostile_environment")
def test_the_core_uses_the_settings_it_is_given_not_the_environment() -> None:
    defaults = AuthSettings()
    client = OAuthClient.resolve(settings=defaults)
    assert (client.auth_url, client.client_id) == (DEFAULT_AUTH_URL, CARTO_PUBLIC_CLIENT_ID)
    credentials = M2MCredentials.from_mapping(
        {"api_base_url": "https://api.example.com", "client_id": "c", "client_secret": "s"},
        source="test",
        settings=defaults,
    )
    assert credentials.auth_url == DEFAULT_AUTH_URL
    assert defaults.accounts_url_for("https://auth.carto.com") == "https://accounts.app.carto.com/accounts"
    parts = {"cache": TokenCache(None), "cache_key": CacheKey.of("t"), "fetch_token": lambda: None}
    with pytest.raises(CredentialsConfigError, match="use https://"):  # $CARTO_ALLOW_... is not read
        CartoAuth._assemble(api_base_url="http://emu:8808", **parts)
    allowed = AuthSettings(insecure_http_hosts=frozenset({"EMU"}))
    assert CartoAuth._assemble(api_base_url="http://emu:8808", settings=allowed, **parts).api_base_url


@pytest.mark.usefixtures("hostile_environment")
def test_the_edges_read_the_environment_once(monkeypatch) -> None:
    client = OAuthClient.resolve()
    assert client.client_id == "client-from-the-environment"
    assert client.settings.insecure_http_hosts == {"emu"}
    auth = CartoAuth.from_values("http://emu:8808", "c", "s", use_cache=False)
    assert auth.api_base_url == "http://emu:8808"
    monkeypatch.setenv(INSECURE_HTTP_HOSTS_ENV, "")
    assert auth.settings.insecure_http_hosts == {"emu"}  # frozen when built, not read again
    with pytest.raises(CredentialsConfigError, match="use https://"):
        CartoAuth.from_values("http://emu:8808", "c", "s", use_cache=False)


def test_discovery_asks_the_settings_accounts_url_not_the_environment(carto_emulator, monkeypatch) -> None:
    token = carto_emulator.state.issue_token("oauth", "auth0|someone", 3600, {"sub": "auth0|someone"})
    monkeypatch.setenv(ACCOUNTS_URL_ENV, "https://accounts.example.invalid/accounts")
    account = discover_account(token, auth_url=carto_emulator.url, policy=ONE_TRY)  # loopback: emulator's
    assert account.api_base_url == carto_emulator.url
    elsewhere = AuthSettings(accounts_url=f"{carto_emulator.url}/accounts")
    assert discover_account(token, auth_url=DEFAULT_AUTH_URL, settings=elsewhere).api_base_url
    assert carto_emulator.calls("GET /accounts") == 2


def _token_requests(carto_emulator, faults: int, **kwargs) -> int:
    """Token requests a CartoAuth sends against ``faults`` answers of 503 (then the emulator answers)."""
    carto_emulator.add_fault("POST /oauth/token", 503, times=faults)
    data = {
        "api_base_url": carto_emulator.url,
        "client_id": carto_emulator.client_id,
        "client_secret": carto_emulator.client_secret,
        "auth_url": carto_emulator.url,
    }
    credentials = M2MCredentials.from_mapping(data, source="test", settings=AuthSettings())
    auth = CartoAuth.from_m2m_credentials(credentials, use_cache=False, **kwargs)
    before = carto_emulator.calls("POST /oauth/token")
    with pytest.raises(CredentialsError, match="HTTP 503"):
        auth.get_token()
    return carto_emulator.calls("POST /oauth/token") - before


def test_the_token_retry_policy_is_an_explicit_setting(carto_emulator) -> None:
    """``token_retry`` if given, else the chosen ``retry_policy``, else ``settings.token_retry``: one
    more 503 than attempts each time, so a policy that tried more would get a token and fail here."""
    settings = AuthSettings(token_retry=THREE_TRIES)
    assert _token_requests(carto_emulator, 3, settings=settings) == 3
    assert _token_requests(carto_emulator, 1, settings=settings, retry_policy=ONE_TRY) == 1
    assert (
        _token_requests(carto_emulator, 1, settings=settings, retry_policy=THREE_TRIES, token_retry=ONE_TRY)
        == 1
    )


# --------------------------------------------------------------------------- structure


def _environment_reads(path: Path) -> list[str]:
    """The variables ``path`` reads with ``os.environ``/``os.getenv`` ("?": another use of ``os.environ``)."""
    tree = ast.parse(path.read_text())
    uses = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("environ", "getenv")
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    ]
    named: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            target = func.value if isinstance(func, ast.Attribute) and func.attr == "get" else func
            key = node.args[0]
        elif isinstance(node, ast.Subscript):
            target, key = node.value, node.slice
        else:
            continue
        if any(target is use for use in uses):
            named[id(target)] = key.value if isinstance(key, ast.Constant) else ast.unparse(key)
    return sorted(named.get(id(use), "?") for use in uses)


def test_only_from_environment_reads_the_environment() -> None:
    reads = {
        (path.name, name)
        for path in sorted((PACKAGE / "auth").rglob("*.py"))
        if path.name != "settings.py"
        for name in _environment_reads(path)
    }
    assert reads == CONTEXT_PROBES
    assert _environment_reads(PACKAGE / "auth" / "settings.py") == ["?"]  # from_environment's default
    api = PACKAGE / "api"
    assert _environment_reads(api / "retry.py") == _environment_reads(api / "transport.py") == []
