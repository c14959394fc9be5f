"""CARTO as it really answers (issue 21): each test runs against one of the emulator's unpleasant modes
(:mod:`carto_provider.testing.quirks`) over real HTTP, and checks what the provider does with it."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace

import httpx
import pytest

from carto_provider.errors import CartoAPIError, CartoJobError, CartoJobTimeout
from carto_provider.hooks.imports import CartoImportsHook
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.operators.sql import CartoSQLOperator
from carto_provider.operators.workflows import CartoRunWorkflowOperator
from carto_provider.testing.routes.background import DEFAULT_WORDS
from carto_provider.testing.routes.imports import imports_api
from carto_provider.testing.routes.sql import sql_api
from tests.carto_jobs_support import PROJECT, rows, sql_jobs

PROCEDURE = f"{PROJECT}.workflows_temp.wfproc_faithful"


def install_procedure(hook: CartoSQLHook) -> None:
    hook.wait_for_job(
        hook.submit_job(
            f"CREATE OR REPLACE PROCEDURE `{PROCEDURE}`(a INT64, b STRING) BEGIN "
            f"CREATE OR REPLACE TABLE `{PROJECT}.shared.faithful` AS SELECT a AS a, b AS b; END"
        ).job_id,
        poll_interval=0.1,
    )


def task_context(try_number: int) -> dict:
    ti = SimpleNamespace(dag_id="etl", task_id="t", run_id="manual__1", map_index=-1, try_number=try_number)
    return {"ti": ti, "dag_run": SimpleNamespace(start_date=dt.datetime.now(dt.timezone.utc))}


# ------------------------------------------------------------------ 1. workflows without INFORMATION_SCHEMA


def test_carto_dw_refuses_information_schema_unless_the_quirk_allows_it(fast_carto):
    sql = f"SELECT parameter_name FROM `{PROJECT}.workflows_temp.INFORMATION_SCHEMA.PARAMETERS`"
    with pytest.raises(CartoAPIError, match="INFORMATION_SCHEMA") as info:
        CartoSQLHook().run_query(sql)
    assert info.value.status == 403
    fast_carto.set_quirks(information_schema_on_carto_dw=True)
    assert CartoSQLHook().run_query(sql).rows == []


def test_a_carto_dw_workflow_needs_its_argument_order_and_fails_before_any_job(fast_carto):
    operator = CartoRunWorkflowOperator(
        task_id="wf", procedure=PROCEDURE, parameters={"b": "x", "a": 1}, deferrable=False
    )
    with pytest.raises(ValueError, match=r"parameter_order=\[\.\.\.\].*call=") as info:
        operator.execute({})
    assert "No CARTO job was started" in str(info.value)
    assert fast_carto.calls("POST /v3/sql/*") == 0


def test_a_carto_dw_workflow_runs_with_parameter_order(fast_carto):
    install_procedure(CartoSQLHook())
    CartoRunWorkflowOperator(
        task_id="wf",
        procedure=PROCEDURE,
        parameters={"b": "x", "a": 7},
        parameter_order=["a", "b"],
        deferrable=False,
    ).execute({})
    assert rows(fast_carto, f"SELECT * FROM `{PROJECT}.shared.faithful`") == [{"a": 7, "b": "x"}]
    assert fast_carto.calls("POST /v3/sql/carto_dw/query") == 0  # no introspection at all


def test_a_refused_introspection_elsewhere_says_what_to_pass(fast_carto):
    sql_api(fast_carto.state).settings.connections["my_bigquery"] = "bigquery"
    fast_carto.add_fault("POST /v3/sql/my_bigquery/query", 403, body={"error": "Access Denied"})
    operator = CartoRunWorkflowOperator(
        task_id="wf", procedure=PROCEDURE, parameters={"a": 1, "b": "x"}, connection="my_bigquery"
    )
    with pytest.raises(ValueError, match=r"Access Denied.*parameter_order"):
        operator.execute({})
    assert fast_carto.calls("POST /v3/sql/my_bigquery/job") == 0


# ------------------------------------------------------------------ 2. two ids


def test_the_polled_id_is_kept_when_the_job_reports_another(fast_carto):
    fast_carto.set_quirks(job_id_differs=True)
    hook = CartoSQLHook()
    created = hook.submit_job("SELECT 1")
    done = hook.wait_for_job(created.job_id, poll_interval=0.1)
    assert done.job_id == created.job_id == created.external_id
    assert done.reported_id == "bq_" + created.job_id.removeprefix("job_")
    ids = CartoSQLOperator(task_id="t", sql="SELECT 2", deferrable=False).execute({})
    assert ids["job_id"] == ids["external_id"] and ids["reported_id"].startswith("bq_")
    running = hook.submit_job("SELECT 3")
    assert hook.cancel_job(running.job_id).job_id == running.job_id  # DELETE by the polled id


# ------------------------------------------------------------------ 3. status words


def test_warehouse_native_words_end_jobs_as_they_mean(fast_carto):
    fast_carto.set_quirks(status_words="warehouse")
    hook = CartoSQLHook()
    assert hook.wait_for_job(hook.submit_job("SELECT 1").job_id, poll_interval=0.1).status == "SUCCEEDED"
    with pytest.raises(CartoJobError, match="FAILED_WITH_ERROR"):
        hook.wait_for_job(hook.submit_job("SELECT nope FROM nowhere").job_id, poll_interval=0.1)
    job = hook.submit_job("SELECT 1")
    hook.cancel_job(job.job_id)
    with pytest.raises(CartoJobError, match=r"was cancelled.*ABORTED"):
        hook.wait_for_job(job.job_id, poll_interval=0.1)


def test_an_unknown_word_is_bounded_by_patience_and_named(fast_carto, caplog):
    sql_api(fast_carto.state).settings.status_words = {**DEFAULT_WORDS, "success": "Wrapped_Up"}
    hook = CartoSQLHook(unknown_status_patience=0.5)
    job = hook.submit_job("SELECT 1")
    with (
        caplog.at_level(logging.WARNING, logger="carto_provider.api.jobs"),
        pytest.raises(CartoJobTimeout, match=r"kept the status 'Wrapped_Up'.*status_words"),
    ):
        hook.wait_for_job(job.job_id, poll_interval=0.1, timeout=3600)
    assert any("'Wrapped_Up'" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_more_words_are_configurable_case_insensitively(fast_carto, monkeypatch):
    sql_api(fast_carto.state).settings.status_words = {**DEFAULT_WORDS, "success": "Wrapped_Up"}
    monkeypatch.setenv("AIRFLOW__CARTO__STATUS_WORDS", '{"WRAPPED_UP": "success"}')
    hook = CartoSQLHook()
    assert hook.wait_for_job(hook.submit_job("SELECT 1").job_id, poll_interval=0.1).outcome == "success"
    monkeypatch.delenv("AIRFLOW__CARTO__STATUS_WORDS")
    ids = CartoSQLOperator(
        task_id="t", sql="SELECT 1", deferrable=False, status_words={"wrapped_up": "success"}
    ).execute({})
    assert ids["status"] == "Wrapped_Up"


# ------------------------------------------------------------------ 4. tags as strings


def test_tags_are_strings_and_a_retry_still_reattaches(fast_carto):
    sql_api(fast_carto.state).settings.job_duration = 2.0
    first = CartoSQLOperator(task_id="t", sql="SELECT 1", deferrable=False, wait_for_completion=False)
    started = first.execute(task_context(1))
    (job,) = sql_jobs(fast_carto)
    assert all(isinstance(v, str) for v in job.fields["metadata"].values())
    assert job.fields["metadata"]["try_number"] == "1" and job.fields["metadata"]["map_index"] == "-1"
    retry = CartoSQLOperator(task_id="t", sql="SELECT 1", deferrable=False, poll_interval=0.1)
    assert retry.execute(task_context(2))["job_id"] == started["job_id"]
    assert len(list(sql_jobs(fast_carto))) == 1


# ------------------------------------------------------------------ 5. ambiguous creations


def test_a_503_after_the_job_was_created_finds_it_instead_of_starting_another(fast_carto):
    fast_carto.set_quirks(created_then_503=1)
    job = CartoSQLHook().submit_job("SELECT 1")
    assert [j.job_id for j in sql_jobs(fast_carto)] == [job.job_id]
    assert fast_carto.calls("POST /v3/sql/carto_dw/job") == 1
    assert fast_carto.calls("GET /v3/sql/jobs") == 1


def test_a_503_after_the_import_was_created_finds_it(fast_carto):
    fast_carto.set_quirks(created_then_503=1)
    url = f"{fast_carto.url}/emulator/files/stores.geojson"
    job = CartoImportsHook().create_import(url, f"{PROJECT}.shared.stores_once", overwrite=True)
    created = imports_api(fast_carto.state).jobs.newest_first()
    assert [j.job_id for j in created] == [job.job_id]
    assert fast_carto.calls("POST /v3/imports") == 1 and fast_carto.calls("GET /v3/imports") == 1


# ------------------------------------------------------------------ 6. cancelling a finished job


def test_cancelling_a_finished_job_reports_how_it_ended(fast_carto):
    fast_carto.set_quirks(cancel_finished_400=True)
    hook = CartoSQLHook()
    job = hook.wait_for_job(hook.submit_job("SELECT 1").job_id, poll_interval=0.1)
    assert hook.cancel_job(job.job_id).outcome == "success"


def test_a_timeout_stays_the_error_when_the_job_ended_before_the_cancel(fast_carto):
    fast_carto.set_quirks(cancel_finished_400=True)
    hook = CartoSQLHook()
    hook.run_query("SELECT 1")  # the warehouse is warm: the job below takes its 0.3 s, no more
    fast_carto.set_latency("DELETE /v3/sql/*", 1.5)  # the job ends while the cancel travels
    job = hook.submit_job("SELECT 1")
    with pytest.raises(CartoJobTimeout, match=r"time ran out; CARTO had already ended it 'success'"):
        hook.wait_for_job(job.job_id, poll_interval=0.1, timeout=0.05)
    assert fast_carto.calls(f"DELETE /v3/sql/carto_dw/job/{job.job_id}") == 1


# ------------------------------------------------------------------ 7. connections list


def test_provider_id_and_paging_are_followed(fast_carto):
    settings = sql_api(fast_carto.state).settings
    settings.connections.update({"my_dbr": "databricksRest", "my_oracle": "oracle", "my_sf": "snowflake"})
    fast_carto.set_quirks(connections_provider_field="providerId", connections_page_size=2)
    listed = CartoSQLHook().list_connections()
    assert [c["name"] for c in listed] == ["carto_dw", "my_dbr", "my_oracle", "my_sf"]
    assert fast_carto.calls("GET /v3/connections") == 2
    call = CartoRunWorkflowOperator(
        task_id="wf", procedure="main.workflows_temp.wfproc_x", parameters={"n": 3}, connection="my_dbr"
    )
    with pytest.raises(CartoJobError):  # the emulator's warehouse speaks BigQuery only
        call.execute({})
    assert list(sql_jobs(fast_carto))[-1].fields["query"] == "CALL main.workflows_temp.wfproc_x(n => :n)"
    oracle = CartoRunWorkflowOperator(
        task_id="wf", procedure="s.wfproc_x", parameters={"n": 1}, connection="my_oracle"
    )
    with pytest.raises(ValueError, match="pass the exact CALL"):
        oracle.execute({})


def test_the_dbapi_hook_reads_the_dialect_of_databricks_rest_and_oracle(fast_carto):
    from carto_provider.hooks.dbapi import CartoDbApiHook

    settings = sql_api(fast_carto.state).settings
    settings.connections.update({"my_dbr": "databricksRest", "my_oracle": "oracle"})
    fast_carto.set_quirks(connections_provider_field="providerId", connections_page_size=1)
    assert CartoDbApiHook(carto_connection="my_dbr").dialect_name == "databricks"
    assert CartoDbApiHook(carto_connection="my_oracle").dialect_name == "oracle"


# ------------------------------------------------------------------ 8. error bodies


def test_error_lists_are_joined_and_hints_shown(fast_carto):
    fast_carto.set_quirks(error_lists=True)
    with pytest.raises(CartoAPIError) as info:
        CartoSQLHook().run_query("SELECT nope FROM nowhere")
    message = str(info.value)
    assert "['" not in message and "hint: Check the request" in message
    body = {
        "error": ["Column not found", "Missing columns"],
        "hint": "Check the names",
        "column_name": "geom",
    }
    fast_carto.add_fault("GET /v3/connections", 400, body=body)
    with pytest.raises(
        CartoAPIError, match="Column not found; Missing columns: hint: Check the names; column: geom"
    ):
        CartoSQLHook().list_connections()


def test_the_tokens_api_description_is_shown(fast_carto):
    fast_carto.add_fault("GET /v3/connections", 400, body={"error": "Bad grants", "description": "no source"})
    with pytest.raises(CartoAPIError, match="Bad grants: no source"):
        CartoSQLHook().list_connections()


# ------------------------------------------------------------------ 9. smaller points


def test_created_since_and_client_are_sent_as_cartos_clients_send_them(fast_carto):
    hook = CartoSQLHook()
    hook.list_jobs(created_since=dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc))
    query = httpx.QueryParams(fast_carto.state.last_query["GET /v3/sql/jobs"])
    assert query["created_since"] == "2026-01-02T03:04:05.678Z"
    hook.wait_for_job(hook.submit_job("SELECT 1").job_id, poll_interval=0.1)
    hook.run_query("SELECT 1")
    assert fast_carto.events("client", "airflow-provider-carto") >= 4
    assert fast_carto.events("client", "") == 0  # every /v3 call named its client
    assert "v" not in query


def test_executemany_stays_under_the_query_parameter_cap(fast_carto, monkeypatch):
    from carto_provider.api import dbapi
    from carto_provider.hooks.dbapi import CartoDbApiHook

    fast_carto.set_quirks(max_query_parameters=4)
    monkeypatch.setattr(dbapi, "MAX_QUERY_PARAMETERS", 4)
    hook = CartoSQLHook()
    hook.wait_for_job(
        hook.submit_job(f"CREATE TABLE `{PROJECT}.shared.many` (a INT64, b STRING)").job_id, poll_interval=0.1
    )
    with CartoDbApiHook().get_conn() as conn:
        conn.cursor().executemany(
            f"INSERT INTO `{PROJECT}.shared.many` (a, b) VALUES (?, ?)", [(i, str(i)) for i in range(5)]
        )
    assert rows(fast_carto, f"SELECT COUNT(*) AS n FROM `{PROJECT}.shared.many`") == [{"n": 5}]
    assert fast_carto.calls("POST /v3/sql/carto_dw/job") == 4  # the CREATE, then 2 + 2 + 1 rows


def test_snowflake_answers_upper_case_keys(fast_carto):
    sql_api(fast_carto.state).settings.connections["my_sf"] = "snowflake"
    assert CartoSQLHook().run_query("SELECT 1 AS n", connection="my_sf").rows == [{"N": 1}]


def test_a_query_past_carto_s_minute_is_not_repeated(fast_carto):
    fast_carto.set_quirks(query_time_limit=0.0)
    with pytest.raises(CartoAPIError, match=r"HTTP 504.*Create a job") as info:
        CartoSQLHook().run_query("SELECT 1")
    assert info.value.status == 504
    assert fast_carto.calls("POST /v3/sql/carto_dw/query") == 1


def test_a_429_has_no_retry_after_by_default(fast_carto):
    settings = imports_api(fast_carto.state).settings
    settings.max_concurrent, settings.retry_after, settings.duration = 0, None, 30
    token = CartoSQLHook().get_access_token()
    response = httpx.post(
        f"{fast_carto.url}/v3/imports",
        headers={"Authorization": f"Bearer {token}"},
        json={"connection": "carto_dw", "url": f"{fast_carto.url}/x.csv", "destination": f"{PROJECT}.s.t"},
    )
    assert response.status_code == 429 and "retry-after" not in response.headers


# ------------------------------------------------------------------ 10. the switches


def test_quirks_switch_by_env_constructor_and_http(monkeypatch):
    from carto_provider.testing.emulator import CartoEmulator

    monkeypatch.setenv("CARTO_EMULATOR_QUIRKS", '{"job_id_differs": true}')
    with CartoEmulator(quirks={"status_words": "warehouse"}) as emulator:
        assert emulator.quirks.job_id_differs and emulator.quirks.status_words == "warehouse"
        assert not emulator.quirks.information_schema_on_carto_dw  # the CARTO-faithful default
        answer = httpx.post(f"{emulator.url}/emulator/quirks", json={"error_lists": True})
        assert answer.status_code == 200 and answer.json()["error_lists"] is True
        refused = httpx.post(f"{emulator.url}/emulator/quirks", json={"no_such_quirk": 1})
        assert refused.status_code == 400 and "no_such_quirk" in str(refused.json()["error"])
