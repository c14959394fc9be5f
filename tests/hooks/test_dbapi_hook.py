"""``CartoDbApiHook``: common.sql's DbApiHook over CARTO's SQL API, against the emulator."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook

from carto_provider.api import dbapi
from carto_provider.errors import CartoJobError, UnknownHookParameterError
from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.hooks.dbapi import CartoBigQueryDialect, CartoDbApiHook
from tests.carto_jobs_support import rows

TABLE = "shared.dbapi_test"


def common_sql_hook(conn_id: str = "carto_default", **hook_params):
    """The hook common.sql's operators build: connection extras passed as hook params."""
    from airflow.providers.common.sql.operators.sql import BaseSQLOperator

    return BaseSQLOperator.get_hook(conn_id, hook_params=hook_params)


@pytest.fixture
def table(fast_carto) -> str:
    hook = CartoDbApiHook()
    hook.run(
        [
            "CREATE SCHEMA IF NOT EXISTS shared",
            f"CREATE OR REPLACE TABLE {TABLE} (id INT64, name STRING, day DATE)",
        ]
    )
    return TABLE


def test_common_sql_builds_the_dbapi_hook_from_the_connection_and_its_extras(fast_carto):
    hook = common_sql_hook()  # used to raise TypeError: BaseHook.__init__() got ... 'auth_url'
    assert type(hook) is CartoDbApiHook
    assert isinstance(hook, DbApiHook) and isinstance(hook, CartoAuthHook)
    assert hook.get_first("SELECT 1 AS one, 'x' AS letter") == (1, "x")
    # It is still the CARTO hook: tokens and the Data Warehouse client work on it.
    assert hook.get_access_token().count(".") == 2
    assert hook.get_carto_dw_client().project == "carto-dw-ac-emulator"
    assert hook.test_connection()[0] is True


def test_an_unknown_hook_param_is_refused_with_a_clear_error(fast_carto):
    with pytest.raises(
        UnknownHookParameterError, match=r"unknown parameter\(s\) 'carto_conection'.*accepts:"
    ):
        common_sql_hook(carto_conection="carto_dw").get_first("SELECT 1")
    with pytest.raises(TypeError, match="'colour'"):  # the plain hook refuses the same way
        CartoAuthHook(colour="blue").get_access_token()


def test_an_unknown_extra_of_the_connection_is_accepted(fast_carto, monkeypatch):
    conn = json.loads(os.environ["AIRFLOW_CONN_CARTO_DEFAULT"])
    conn["extra"]["description"] = "team sales"  # common.sql passes it to the hook as a parameter
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_SALES", json.dumps(conn))
    assert common_sql_hook("carto_sales").get_first("SELECT 2") == (2,)


def test_a_connection_extra_given_as_hook_param_overrides_the_connection(fast_carto, tmp_path):
    hook = CartoDbApiHook(cache_dir=str(tmp_path / "other-cache"))
    assert hook.settings.cache_dir == str(tmp_path / "other-cache")
    hook.get_first("SELECT 1")
    assert (tmp_path / "other-cache").is_dir()


def test_named_and_positional_parameters_become_query_parameters(table):
    hook = CartoDbApiHook()
    hook.run(
        f"INSERT INTO {table} VALUES (?, ?, ?), (2, 'b', NULL)", parameters=[1, "a", dt.date(2024, 1, 3)]
    )
    assert hook.get_records(f"SELECT id, name, day FROM {table} WHERE id >= ? ORDER BY id", [1]) == [
        (1, "a", "2024-01-03"),
        (2, "b", None),
    ]
    assert hook.get_first(f"SELECT name FROM {table} WHERE day = @day", {"day": dt.date(2024, 1, 3)}) == (
        "a",
    )


def test_rows_come_from_query_and_other_statements_run_as_jobs(table, fast_carto):
    jobs_before, queries_before = (
        fast_carto.calls("POST /v3/sql/*/job"),
        fast_carto.calls("POST /v3/sql/*/query"),
    )
    hook = CartoDbApiHook()
    hook.run(f"INSERT INTO {table} (id, name) VALUES (1, 'a')")
    hook.get_records(f"SELECT * FROM {table}")
    assert fast_carto.calls("POST /v3/sql/*/job") == jobs_before + 1
    assert fast_carto.calls("POST /v3/sql/*/query") == queries_before + 1
    CartoDbApiHook(statement_mode="query").run(f"DELETE FROM {table} WHERE id = 1")
    assert fast_carto.calls("POST /v3/sql/*/job") == jobs_before + 1
    assert rows(fast_carto, f"SELECT COUNT(*) AS n FROM {table}") == [{"n": 0}]


def test_insert_rows_sends_one_job_per_chunk_with_typed_values(table, fast_carto):
    jobs_before = fast_carto.calls("POST /v3/sql/*/job")
    data = [(i, f"name {i}", dt.date(2024, 1, i)) for i in range(1, 8)]
    CartoDbApiHook().insert_rows(table, data, target_fields=["id", "name", "day"], commit_every=5)
    assert fast_carto.calls("POST /v3/sql/*/job") == jobs_before + 2  # 7 rows in chunks of 5
    stored = rows(fast_carto, f"SELECT id, name, day FROM {table} ORDER BY id")
    assert [(r["id"], r["name"], r["day"]) for r in stored] == data


def test_insert_rows_finds_the_columns_through_the_bigquery_dialect(table, fast_carto, monkeypatch):
    hook = CartoDbApiHook()
    assert hook.dialect_name == "bigquery"
    assert isinstance(hook.dialect, CartoBigQueryDialect)
    assert hook.dialect.get_column_names(table) == ["id", "name", "day"]
    assert hook.dialect.escape_word("unit price") == "`unit price`"
    monkeypatch.setattr(CartoDbApiHook, "_resolve_target_fields", True)
    hook.insert_rows(table, [(9, "z", None)])
    assert rows(fast_carto, f"SELECT id FROM {table}") == [{"id": 9}]


def test_get_df_returns_a_pandas_frame(table):
    pd = pytest.importorskip("pandas")
    hook = CartoDbApiHook()
    hook.insert_rows(table, [(1, "a", None), (2, "b", None)], target_fields=["id", "name", "day"])
    frame = hook.get_df(f"SELECT id, name FROM {table} ORDER BY id", df_type="pandas")
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("records") == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def test_a_failing_statement_fails_with_the_warehouse_message(table):
    hook = CartoDbApiHook()
    with pytest.raises(Exception, match=r"no_such_column"):
        hook.get_records(f"SELECT no_such_column FROM {table}")
    with pytest.raises(dbapi.DatabaseError, match="failed") as raised:  # what common.sql catches
        hook.run("INSERT INTO shared.no_such_table VALUES (1)")
    assert isinstance(raised.value.__cause__, CartoJobError)


def test_the_carto_connection_comes_from_the_param_then_the_extra(fast_carto, monkeypatch):
    assert CartoDbApiHook().carto_connection == "carto_dw"
    assert CartoDbApiHook(carto_connection="my_snowflake").carto_connection == "my_snowflake"
    conn = json.loads(os.environ["AIRFLOW_CONN_CARTO_DEFAULT"])
    conn["extra"]["carto_connection"] = "elsewhere"
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_OTHER", json.dumps(conn))
    hook = common_sql_hook("carto_other")
    assert hook.carto_connection == "elsewhere"
    with pytest.raises(Exception, match="Connection not found: elsewhere"):
        hook.get_first("SELECT 1")
