"""CartoAuthHook on a real Airflow, against the emulator over HTTP."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from carto_provider.api.retry import DEFAULT_RETRY, CartoRetryPolicy
from carto_provider.auth.settings import INSECURE_HTTP_HOSTS_ENV, AuthSettings
from carto_provider.errors import CredentialsConfigError, CredentialsError
from carto_provider.hooks.carto import CartoAuthHook
from tests.conftest import airflow_cli
from tests.helpers import emulator_cli_connection


def test_hook_attributes_are_the_contract():
    assert CartoAuthHook.conn_type == "carto"
    assert CartoAuthHook.conn_name_attr == "carto_conn_id"
    assert CartoAuthHook.default_conn_name == "carto_default"
    assert CartoAuthHook.hook_name == "CARTO"


def test_hook_gives_token_base_url_and_dw_credentials(carto_connection, carto_emulator):
    hook = CartoAuthHook()
    token = hook.get_access_token()
    assert hook.get_api_base_url() == carto_emulator.url
    project, dw_token = hook.get_carto_dw_credentials()
    assert project == "carto-dw-ac-emulator" and dw_token and token
    # a second hook (another task in the same process) reuses the cached token
    assert CartoAuthHook("carto_default").get_access_token() == token
    assert carto_emulator.token_requests() == 1


def test_runtime_tokens_are_masked(carto_connection, carto_emulator):
    from airflow.providers.common.compat.sdk import redact

    hook = CartoAuthHook()
    token = hook.get_access_token()
    _, dw_token = hook.get_carto_dw_credentials()
    assert redact(f"token={token} dw={dw_token}") == "token=*** dw=***"


def test_tokens_are_shared_by_task_processes_through_the_cache_dir(carto_connection, carto_emulator):
    script = "from carto_provider.hooks.carto import CartoAuthHook; print(CartoAuthHook().get_access_token()[-12:])"
    outputs = {
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()[-1]
        for _ in range(3)
    }
    assert len(outputs) == 1
    assert carto_emulator.token_requests() == 1


def test_two_connections_get_their_own_tokens(carto_emulator, monkeypatch, tmp_path):
    carto_emulator.add_client("other-client", "other-secret-xyz987")
    shared_dir = str(tmp_path / "cache")
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_A", carto_emulator.airflow_connection_json(cache_dir=shared_dir))
    other = carto_emulator.airflow_connection(cache_dir=shared_dir)
    other.update(login="other-client", password="other-secret-xyz987")
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_B", json.dumps(other))
    a, b = CartoAuthHook("carto_a").get_access_token(), CartoAuthHook("carto_b").get_access_token()
    assert a != b
    assert carto_emulator.token_requests("emulator-client-id") == 1
    assert carto_emulator.token_requests("other-client") == 1


def test_host_without_scheme_means_https(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CARTO_DEFAULT",
        json.dumps(
            {"conn_type": "carto", "host": "gcp-us-east1.api.carto.com", "login": "i", "password": "s"}
        ),
    )
    assert CartoAuthHook().settings.api_base_url == "https://gcp-us-east1.api.carto.com"


def test_http_host_that_is_not_loopback_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CARTO_DEFAULT",
        json.dumps(
            {"conn_type": "carto", "host": "http://gcp-us-east1.api.carto.com", "login": "i", "password": "s"}
        ),
    )
    with pytest.raises(CredentialsConfigError, match="use https://") as info:
        CartoAuthHook().get_access_token()
    assert "carto_default" in str(info.value)


def test_the_connection_settings_read_the_environment_once(carto_connection, monkeypatch):
    monkeypatch.setenv(INSECURE_HTTP_HOSTS_ENV, "Emu")
    settings = CartoAuthHook().settings
    assert settings.auth == AuthSettings.from_environment() and settings.auth.insecure_http_hosts == {"emu"}
    monkeypatch.delenv(INSECURE_HTTP_HOSTS_ENV)
    assert settings.auth.insecure_http_allowed("emu")  # resolved when read, frozen since


def test_token_requests_retry_under_the_chosen_policy_else_the_settings_token_retry(
    carto_connection, carto_emulator
):
    two_tries = CartoRetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02)
    assert (CartoAuthHook().retry_policy, CartoAuthHook().token_retry) == (DEFAULT_RETRY, None)
    assert CartoAuthHook(retry_policy=two_tries).token_retry == two_tries
    settings = CartoAuthHook().settings
    few = dataclasses.replace(settings, auth=AuthSettings(token_retry=two_tries))
    carto_emulator.add_fault("POST /oauth/token", 503, times=2)  # one more would mean a third try
    with pytest.raises(CredentialsError, match="HTTP 503"):
        CartoAuthHook._build_auth(few, DEFAULT_RETRY, 5.0).get_token()
    assert carto_emulator.calls("POST /oauth/token") == 2
    carto_emulator.add_fault("POST /oauth/token", 503, times=1)
    with pytest.raises(CredentialsError, match="HTTP 503"):
        CartoAuthHook._build_auth(few, DEFAULT_RETRY, 5.0, CartoRetryPolicy(attempts=1)).get_token()
    assert carto_emulator.calls("POST /oauth/token") == 3


def test_missing_client_secret_names_the_field_and_the_connection(monkeypatch, carto_emulator):
    conn = carto_emulator.airflow_connection()
    conn.pop("password")
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEFAULT", json.dumps(conn))
    with pytest.raises(
        CredentialsConfigError, match=r"Connection 'carto_default' has no Client Secret \(password\)"
    ):
        CartoAuthHook().get_access_token()


def test_hook_repr_has_no_secret(carto_connection, carto_emulator):
    hook = CartoAuthHook()
    hook.get_access_token()
    texts = [repr(hook), repr(hook.settings), repr(hook.get_auth())]
    assert not any(carto_emulator.client_secret in t for t in texts)


def test_importing_hooks_is_cheap_at_parse_time(tmp_path):
    """No google.cloud.bigquery, no emulator stack, and no file created, by importing the hook."""
    env = {**os.environ, "HOME": str(tmp_path)}
    code = (
        "import sys\n"
        "import carto_provider.hooks.carto\n"
        "heavy = [m for m in ('google.cloud.bigquery', 'duckdb', 'fastapi', 'uvicorn', 'sqlglot') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout
    assert out.strip() == "[]"
    assert list(tmp_path.iterdir()) == []


def test_provider_is_registered_with_airflow():
    out = subprocess.run(
        [airflow_cli(), "providers", "list", "--output", "json"], check=True, capture_output=True, text=True
    ).stdout
    providers = {p["package_name"]: p for p in json.loads(out[out.index("[") :])}
    assert "airflow-provider-carto" in providers
    from airflow.providers_manager import ProvidersManager

    assert ProvidersManager().hooks["carto"].hook_class_name == "carto_provider.hooks.dbapi.CartoDbApiHook"


def test_emulator_cli_prints_a_connection_that_works(tmp_path):
    with emulator_cli_connection() as conn:
        conn["extra"]["cache_dir"] = str(tmp_path)
        env = {**os.environ, "AIRFLOW_CONN_CARTO_DEFAULT": json.dumps(conn)}
        script = "from carto_provider.hooks.carto import CartoAuthHook; print(CartoAuthHook().get_carto_dw_credentials()[0])"
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True
        )
        assert out.stdout.strip().splitlines()[-1] == "carto-dw-ac-emulator"
