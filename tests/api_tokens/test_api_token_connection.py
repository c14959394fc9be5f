"""Connections of ``auth_type`` ``api_token`` against the emulator over loopback HTTP: SQL jobs,
queries and imports run with the API access token as the bearer, the token endpoint is never called,
and a refused token fails at once with advice."""

from __future__ import annotations

import json

import pytest

from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.errors import APITokenRefusedError, CartoAPIError, CredentialsConfigError
from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.hooks.imports import CartoImportsHook
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.testing.routes.imports import serve_file

QUICK = CartoRetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)


@pytest.fixture
def api_token(fast_carto, monkeypatch) -> str:
    token = fast_carto.issue_api_token(apis=("sql", "imports", "lds"))
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_AAT", json.dumps(fast_carto.api_token_connection(token)))
    return token


def hook(**kwargs) -> CartoSQLHook:
    return CartoSQLHook("carto_aat", at_most_once_retry=QUICK, retry_policy=QUICK, **kwargs)


def test_queries_jobs_and_imports_use_the_api_token_and_never_the_token_endpoint(fast_carto, api_token):
    sql = hook()
    assert sql.get_access_token() == api_token
    assert sql.run_query("SELECT 1 AS one").rows == [{"one": 1}]
    job = sql.wait_for_job(sql.submit_job("SELECT 2").job_id, poll_interval=0.1, timeout=30)
    assert job.outcome == "success"
    url = serve_file(fast_carto.state, "aat.csv", "a,b\n1,x\n")
    imports = CartoImportsHook("carto_aat", at_most_once_retry=QUICK, retry_policy=QUICK)
    done = imports.wait_for_import(
        imports.create_import(fast_carto.url + url, "carto-dw-ac-emulator.shared.aat", overwrite=True).job_id,
        poll_interval=0.1,
        timeout=30,
    )
    assert done.body["rowsImported"] == 1
    assert fast_carto.token_endpoint_requests() == 0
    assert fast_carto.events("api_token_use") >= 5


def test_a_revoked_token_fails_at_once_saying_what_to_check(fast_carto, api_token):
    fast_carto.revoke(api_token)
    with pytest.raises(
        APITokenRefusedError, match="API access token of connection 'carto_aat' was refused"
    ) as info:
        hook().run_query("SELECT 1")
    assert "grants" in str(info.value) and "expired" in str(info.value)
    assert api_token not in str(info.value)
    assert fast_carto.calls("POST /v3/sql/carto_dw/query") == 1  # no retry storm
    assert fast_carto.token_endpoint_requests() == 0


def test_a_token_without_a_grant_on_the_connection_is_refused_with_advice(fast_carto, api_token):
    from carto_provider.testing.routes.sql import sql_api

    sql_api(fast_carto.state).settings.connections["my_snowflake"] = "snowflake"
    with pytest.raises(CartoAPIError, match="refused the API access token for this call") as info:
        hook().submit_job("SELECT 1", connection="my_snowflake")
    assert info.value.status == 403
    assert "permissions" in str(info.value)
    assert fast_carto.calls("POST /v3/sql/my_snowflake/job") == 1


def test_the_emulator_refuses_api_tokens_on_connections(fast_carto, api_token):
    with pytest.raises(CartoAPIError) as info:
        hook().list_connections()
    assert info.value.status == 403
    assert "OAuth Access Token" in str(info.value)


def test_test_connection_runs_select_1_not_the_connections_list(fast_carto, api_token):
    ok, message = CartoAuthHook("carto_aat").test_connection()
    assert ok, message
    assert "SELECT 1 ran on the CARTO connection 'carto_dw'" in message
    assert fast_carto.calls("GET /v3/connections") == 0
    assert api_token not in message


def test_test_connection_falls_back_to_the_lds_quota_for_an_lds_only_token(fast_carto, monkeypatch):
    token = fast_carto.issue_api_token(apis=("lds",))
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_AAT", json.dumps(fast_carto.api_token_connection(token)))
    ok, message = CartoAuthHook("carto_aat").test_connection()
    assert ok, message
    assert "may use the LDS API" in message


def test_test_connection_of_a_revoked_token_fails_with_advice(fast_carto, api_token):
    fast_carto.revoke(api_token)
    ok, message = CartoAuthHook("carto_aat").test_connection()
    assert not ok
    assert "API access token" in message and "grants" in message
    assert api_token not in message


def test_an_api_token_connection_needs_the_token(fast_carto, monkeypatch):
    conn = fast_carto.api_token_connection("")
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_AAT", json.dumps(conn))
    with pytest.raises(CredentialsConfigError, match="no API access token; put it in the password field"):
        hook().get_access_token()
