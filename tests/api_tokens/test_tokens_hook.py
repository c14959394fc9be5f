"""CartoTokensHook against the emulator's Tokens API over loopback HTTP: grants are enforced by the
SQL API, revoked tokens are refused, rotation creates before it revokes, tokens never leak."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.api.tokens import token_body
from carto_provider.errors import APITokenRefusedError, CartoAPIError
from carto_provider.hooks.imports import CartoImportsHook
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.hooks.tokens import CartoTokensHook
from carto_provider.testing.routes.sql import sql_api

QUICK = CartoRetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.05)


@pytest.fixture
def tokens(fast_carto) -> CartoTokensHook:
    sql_api(fast_carto.state).settings.connections["my_snowflake"] = "snowflake"
    return CartoTokensHook(retry_policy=QUICK, at_most_once_retry=QUICK)


def sql_with(carto, token: str, monkeypatch) -> CartoSQLHook:
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_AAT", json.dumps(carto.api_token_connection(token)))
    return CartoSQLHook("carto_aat", retry_policy=QUICK, at_most_once_retry=QUICK)


def test_a_minted_token_works_only_on_its_granted_connection_and_apis(tokens, fast_carto, monkeypatch):
    token = tokens.create_token([("carto_dw", "*")], ["sql", "lds"], expiration=dt.timedelta(hours=1))
    assert token.token_id and token.allowed_apis == ["lds", "sql"]
    assert token.grants == [{"connection_name": "carto_dw", "source": "*"}]
    assert token.token not in repr(token) and "token" not in token.summary()
    sql = sql_with(fast_carto, token.token, monkeypatch)
    assert sql.run_query("SELECT 1 AS x").rows == [{"x": 1}]
    with pytest.raises(CartoAPIError, match="permissions to read this resource") as info:
        sql.run_query("SELECT 1", connection="my_snowflake")
    assert info.value.status == 403
    with pytest.raises(CartoAPIError, match="not allowed to use the imports API"):
        CartoImportsHook("carto_aat", retry_policy=QUICK).list_imports()


def test_list_revoke_and_the_revoked_token_is_refused(tokens, fast_carto, monkeypatch):
    first = tokens.create_token([{"connection_name": "carto_dw", "source": "*"}], ["sql"])
    second = tokens.create_token([("my_snowflake", "db.schema.*")], ["sql"])
    assert {t.token_id for t in tokens.list_tokens()} == {first.token_id, second.token_id}
    assert tokens.get_token_info(first.token).grants == first.grants
    tokens.revoke_token(first.token)
    tokens.revoke_token(first.token)  # already gone: still fine
    assert [t.token_id for t in tokens.list_tokens()] == [second.token_id]
    with pytest.raises(APITokenRefusedError):
        sql_with(fast_carto, first.token, monkeypatch).run_query("SELECT 1")


def test_rotate_creates_and_stores_the_new_token_before_revoking_the_old(tokens, fast_carto, monkeypatch):
    old = tokens.create_token([("carto_dw", "*")], ["sql"])
    stored: list[str] = []

    def store(new):
        stored.append(new.token)
        assert fast_carto.state.check_token(old.token, kinds=("api",)) is not None  # not yet revoked

    new = tokens.rotate_token(old.token, [("carto_dw", "*")], ["sql"], store=store)
    assert stored == [new.token] and new.token != old.token
    assert fast_carto.state.check_token(old.token, kinds=("api",)) is None
    assert sql_with(fast_carto, new.token, monkeypatch).run_query("SELECT 1 AS x").rows == [{"x": 1}]


def test_a_failed_call_about_a_token_never_shows_it(tokens, fast_carto):
    token = tokens.create_token([("carto_dw", "*")], ["sql"])
    fast_carto.add_fault("GET /v3/tokens/*", 400, body={"error": "bad request"})
    with pytest.raises(CartoAPIError) as info:
        tokens.get_token_info(token.token)
    assert token.token not in str(info.value) and token.token not in (info.value.url or "")
    assert "***" in str(info.value)


def test_api_access_tokens_cannot_call_the_tokens_api(fast_carto, monkeypatch):
    token = fast_carto.issue_api_token()
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_AAT", json.dumps(fast_carto.api_token_connection(token)))
    with pytest.raises(CartoAPIError) as info:
        CartoTokensHook("carto_aat", retry_policy=QUICK, at_most_once_retry=QUICK).create_token(
            [("carto_dw", "*")]
        )
    assert info.value.status == 403


def test_token_bodies_are_checked_before_sending():
    assert token_body([("c", "*")], ["SQL", "lds"], referers=["example.com"]) == {
        "grants": [{"connection_name": "c", "source": "*"}],
        "referers": ["example.com"],
        "allowed_apis": ["lds", "sql"],
    }
    when = dt.datetime(2027, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert token_body([("c", "t")], ["sql"], expiration=when)["expiration_date"] == "2027-01-02T03:04:05.000Z"
    with pytest.raises(ValueError, match="subset"):
        token_body([("c", "*")], ["bigquery"])
    with pytest.raises(ValueError, match="at least one grant"):
        token_body([], ["sql"])
    with pytest.raises(ValueError, match="time zone"):
        token_body([("c", "*")], ["sql"], expiration=dt.datetime(2027, 1, 1))
