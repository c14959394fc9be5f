"""Connections with ``auth_type: oauth`` use the login cached by ``carto-provider login`` /
``CartoAuth.from_oauth``, and never prompt: no listening socket, no browser, no input, no HTTP."""

from __future__ import annotations

import builtins
import dataclasses
import json
import socket
import time
import webbrowser
from pathlib import Path

import pytest

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.login.flow import LoginUI
from carto_provider.auth.login.oauth import OAuthClient, login_cache
from carto_provider.errors import LoginRequiredError
from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.testing.browser import HeadlessBrowser


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "tokens"


@pytest.fixture
def dev_connection(carto_emulator, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``carto_dev``: auth_type oauth on the emulator; no host, so the login's API base URL is used."""
    extra = {"auth_type": "oauth", "auth_url": carto_emulator.url, "cache_dir": str(cache_dir)}
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEV", json.dumps({"conn_type": "carto", "extra": extra}))
    monkeypatch.delenv("AIRFLOW_CTX_TASK_ID", raising=False)  # left behind by earlier in-process DAG runs
    return "carto_dev"


class PromptGuard:
    """Once armed, records every attempt to listen on a socket, open a browser or read input (and
    makes it fail)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.attempts: list[str] = []

    def arm(self) -> PromptGuard:
        def refuse(what: str):
            def attempt(*args: object, **kwargs: object) -> None:
                self.attempts.append(what)
                raise AssertionError(f"{what} attempted")

            return attempt

        self.monkeypatch.setattr(socket.socket, "listen", refuse("listen"))
        self.monkeypatch.setattr(webbrowser, "open", refuse("browser"))
        self.monkeypatch.setattr(builtins, "input", refuse("input"))
        return self


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> PromptGuard:
    return PromptGuard(monkeypatch)


def log_in(carto, cache_dir: Path, **kwargs) -> CartoAuth:
    ui = LoginUI(open_url=HeadlessBrowser(), show=lambda text: None, timeout=15)
    return CartoAuth.from_oauth(
        cache_filepath=cache_dir / "token_oauth.json",
        auth_url=carto.url,
        redirect_uri="http://localhost:0/callback/",
        login_ui=ui,
        **kwargs,
    )


def test_without_a_login_the_hook_fails_at_once_without_prompting(
    dev_connection, carto_emulator, cache_dir, prompts
) -> None:
    prompts.arm()
    expected = f"Run `carto-provider login --auth-url {carto_emulator.url} --token-cache-dir {cache_dir}`"
    with pytest.raises(LoginRequiredError, match=expected) as raised:
        CartoAuthHook(dev_connection).get_access_token()
    assert "tasks never open a browser" in str(raised.value)
    assert prompts.attempts == []
    assert carto_emulator.calls("*") == 0


def test_the_hook_uses_the_cached_login(dev_connection, carto_emulator, cache_dir, prompts) -> None:
    login = log_in(carto_emulator, cache_dir)
    prompts.arm()
    hook = CartoAuthHook(dev_connection)
    assert hook.get_access_token() == login.get_access_token()
    assert hook.get_api_base_url() == carto_emulator.url
    assert hook.request("GET", "/v3/connections").status_code == 200
    assert carto_emulator.events("oauth_token") == 1
    assert carto_emulator.token_requests() == 0  # no M2M
    assert prompts.attempts == []


def test_the_connection_s_organization_selects_the_sso_login(
    dev_connection, carto_emulator, cache_dir, monkeypatch
) -> None:
    log_in(carto_emulator, cache_dir, org="org_1234")
    extra = {"auth_type": "oauth", "auth_url": carto_emulator.url, "cache_dir": str(cache_dir)}

    def hook_for(org: str | None) -> CartoAuthHook:
        conn = {"conn_type": "carto", "extra": {**extra, "org": org}}
        monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEV", json.dumps(conn))
        return CartoAuthHook(dev_connection)

    assert hook_for("org_1234").request("GET", "/v3/connections").status_code == 200
    with pytest.raises(LoginRequiredError, match="--org org_5678"):
        hook_for("org_5678").get_access_token()
    with pytest.raises(LoginRequiredError, match="no CARTO login at"):
        hook_for(None).get_access_token()


def test_an_expiring_login_is_not_renewed_by_a_task(
    dev_connection, carto_emulator, cache_dir, prompts
) -> None:
    log_in(carto_emulator, cache_dir)
    cache = login_cache(cache_dir / "token_oauth.json")
    key = OAuthClient.resolve(auth_url=carto_emulator.url).cache_key
    token = cache.peek(key)
    assert token is not None
    cache.store(key, dataclasses.replace(token, obtained_at=time.time() - 86340, expires_at=time.time() + 60))
    before = carto_emulator.calls("*")
    prompts.arm()
    with pytest.raises(LoginRequiredError, match="carto-provider login"):
        CartoAuthHook(dev_connection).get_access_token()
    assert prompts.attempts == []
    assert carto_emulator.calls("*") == before


def test_connection_test_says_what_to_run(dev_connection, carto_emulator, cache_dir) -> None:
    ok, message = CartoAuthHook(dev_connection).test_connection()
    assert not ok and "carto-provider login" in message
    log_in(carto_emulator, cache_dir)
    ok, message = CartoAuthHook(dev_connection).test_connection()
    assert ok, message


def test_a_dag_runs_on_the_cached_login(
    airflow_db, dev_connection, carto_emulator, cache_dir, example_dag
) -> None:
    log_in(carto_emulator, cache_dir)
    run = example_dag("carto_oauth_dev").test()
    assert str(run.state).lower().endswith("success")
    assert carto_emulator.events("oauth_token") == 1  # the login's token, reused by the task
    assert carto_emulator.calls("GET /v3/connections") == 1
    assert carto_emulator.calls("GET /authorize") == 1


def test_a_dag_without_a_login_fails_without_prompting(
    airflow_db, dev_connection, carto_emulator, example_dag, prompts
) -> None:
    prompts.arm()
    run = example_dag("carto_oauth_dev").test()
    assert str(run.state).lower().endswith("failed")
    assert prompts.attempts == []
    assert carto_emulator.calls("*") == 0
