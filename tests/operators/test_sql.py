"""The CARTO operators and sensor in real DAG runs (``dag.test()`` on SQLite) against the emulator."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import signal
import threading
import time
from collections import defaultdict

import pytest

from carto_provider.errors import CartoJobError, QueryTooLargeError
from carto_provider.operators.sql import CartoQueryOperator, CartoSQLOperator
from carto_provider.testing.routes.imports import STORES, daily_sales_csv
from carto_provider.testing.routes.sql import sql_api
from carto_provider.triggers.base import CartoJobTrigger
from tests.carto_jobs_support import (
    PROJECT,
    TEST_DAGS,
    assert_no_secrets,
    load_dag,
    run_dag,
    sql_jobs,
    state_name,
    stored_run_text,
    task_states,
    xcom,
)

# Shared fixtures (pytest finds fixtures among a module's attributes).


DAY = dt.date(2026, 1, 15)
DAGS = TEST_DAGS / "carto_operator_dags.py"


@pytest.fixture
def deferrals(monkeypatch):
    """Counts the CARTO triggers run (the real ones, run in line by ``dag.test()``)."""
    runs: list[str] = []
    real_run = CartoJobTrigger.run

    def counting_run(self):
        runs.append(self.job_id)
        return real_run(self)

    monkeypatch.setattr(CartoJobTrigger, "run", counting_run)
    return runs


def expected_best() -> list[tuple[int, str, float]]:
    """Revenue per store for DAY computed from the source file, not through CARTO."""
    revenue: dict[int, float] = defaultdict(float)
    for row in csv.DictReader(io.StringIO(daily_sales_csv(DAY))):
        revenue[int(row["store_id"])] += float(row["amount"])
    names = {store_id: name for store_id, name, *_ in STORES}
    return sorted(((s, names[s], r) for s, r in revenue.items()), key=lambda x: (-x[2], x[0]))


@pytest.mark.parametrize(
    ("mode", "deferred"), [("polling", False), ("deferrable", True), ("trigger_ended", True)]
)
def test_every_operator_in_a_dag_run(airflow_db, fast_carto, test_dags_bundle, deferrals, mode, deferred):
    dag = load_dag(DAGS, f"carto_ops_{mode}")
    run = run_dag(dag, DAY)

    assert state_name(run.state) == "success", task_states(run)
    assert len(deferrals) >= 5 if deferred else deferrals == []
    best = xcom(run, "read_best")
    assert [(r["store_id"], r["name"], pytest.approx(r["revenue"])) for r in best] == expected_best()
    assert {r["run_label"] for r in best} == {f"run {DAY}"}
    ids = xcom(run, "revenue")
    assert ids["status"] == "success" and ids["connection"] == "carto_dw"
    assert ids["job_id"] in {job.job_id for job in sql_jobs(fast_carto)}
    stores = xcom(run, "import_stores")
    assert stores["rows_imported"] == 5 and stores["destination"] == f"{PROJECT}.shared.stores"
    assert "url" not in stores["body"]
    assert xcom(run, "watch_job")["job_id"] == xcom(run, "start_job")["job_id"]
    assert_no_secrets(stored_run_text(run), fast_carto)


@pytest.mark.parametrize("mode", ["polling", "deferrable"])
def test_a_failing_job_fails_the_task(airflow_db, fast_carto, test_dags_bundle, mode):
    run = run_dag(load_dag(DAGS, f"carto_fail_{mode}"))
    assert state_name(run.state) == "failed"
    assert task_states(run) == {"bad_sql": "failed"}
    assert [job.state for job in sql_jobs(fast_carto)] == ["failure"]


def failing_operator() -> CartoSQLOperator:
    return CartoSQLOperator(task_id="bad", sql=f"SELECT nope FROM `{PROJECT}.shared.gone`", deferrable=False)


def test_job_failure_fails_with_carto_error_when_polling(fast_carto):
    with pytest.raises(CartoJobError) as info:
        failing_operator().execute({})
    error = next(iter(sql_jobs(fast_carto))).error
    assert error and "gone" in error
    assert str(info.value).endswith(error)


def test_job_failure_fails_with_carto_error_when_deferred(fast_carto):
    import asyncio

    from airflow.providers.common.compat.sdk import TaskDeferred

    operator = failing_operator()
    operator.deferrable = True
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    trigger = deferred.value.trigger
    # One trigger class serves every job kind now (issue 15).
    assert isinstance(trigger, CartoJobTrigger) and trigger.kind == "SQL job"
    assert deferred.value.method_name == "execute_complete"
    event = asyncio.run(anext(trigger.run()))
    with pytest.raises(CartoJobError) as info:
        operator.execute_complete({}, event.payload)
    assert str(info.value).endswith(next(iter(sql_jobs(fast_carto))).error)


def test_killing_a_polling_task_cancels_its_carto_job(airflow_db, fast_carto, test_dags_bundle):
    """SIGTERM reaches Airflow's task runner, which calls on_kill: the emulator sees the DELETE."""
    sql_api(fast_carto.state).settings.job_duration = 60
    polled = threading.Event()

    def kill_once_waiting() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and fast_carto.calls("GET /v3/sql/carto_dw/job/*") == 0:
            time.sleep(0.05)
        polled.set()
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=kill_once_waiting, daemon=True)
    run = None
    try:
        killer.start()
        run = run_dag(load_dag(DAGS, "carto_kill"))
    except BaseException as exc:  # Airflow 2's dag.test() re-raises AirflowTaskTerminated (a BaseException)
        if type(exc).__name__ != "AirflowTaskTerminated":
            raise
    finally:
        killer.join(timeout=60)
        signal.signal(signal.SIGTERM, previous)
    assert polled.is_set()
    (job,) = sql_jobs(fast_carto)
    assert fast_carto.calls(f"DELETE /v3/sql/carto_dw/job/{job.job_id}") == 1
    assert job.state == "cancelled"
    if run is not None:
        assert task_states(run) == {"long_job": "failed"}
    with pytest.raises(Exception, match="never_created"):
        fast_carto_rows(fast_carto, f"SELECT * FROM `{PROJECT}.shared.never_created`")


def fast_carto_rows(carto, sql):
    from carto_provider.testing.warehouse import get_warehouse

    return get_warehouse(carto.state).execute(sql).rows


def test_query_operator_returns_rows_within_max_rows(fast_carto):
    sql = "SELECT x FROM UNNEST(GENERATE_ARRAY(1, @n)) AS x ORDER BY x"
    rows = CartoQueryOperator(task_id="q", sql=sql, query_parameters={"n": 3}, max_rows=3).execute({})
    assert rows == [{"x": 1}, {"x": 2}, {"x": 3}]
    too_many = CartoQueryOperator(task_id="q", sql=sql, query_parameters={"n": 4}, max_rows=3)
    with pytest.raises(QueryTooLargeError, match="returned 4 rows, more than max_rows=3"):
        too_many.execute({})


def test_deferrable_default_comes_from_airflow_config(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "true")
    assert CartoSQLOperator(task_id="a", sql="SELECT 1").deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "false")
    assert CartoSQLOperator(task_id="b", sql="SELECT 1").deferrable is False
    assert CartoSQLOperator(task_id="c", sql="SELECT 1", deferrable=True).deferrable is True


def test_sql_can_come_from_a_template_file():
    assert CartoSQLOperator.template_ext == (".sql",)
    assert set(CartoSQLOperator.template_fields) == {"sql", "query_parameters", "connection"}
    assert "carto_conn_id" not in CartoSQLOperator.template_fields
