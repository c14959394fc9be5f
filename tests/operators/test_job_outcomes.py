"""Issue 11's outcome rules against the emulator in CARTO's worst-case vocabulary, in both modes.

A failure reported as ``done`` + an error object fails the task with CARTO's code and message; a job
that outlives the task's bound is cancelled (one DELETE) and the task fails naming its last status;
an unknown status word is warned about once and ends within the bound.
"""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from carto_provider.api.jobs import job_from_event
from carto_provider.errors import CartoJobError, CartoJobTimeout
from carto_provider.operators.sql import CartoSQLOperator
from carto_provider.testing.routes.background import WORST_CASE_WORDS
from carto_provider.testing.routes.sql import sql_api
from tests.carto_jobs_support import PROJECT, TEST_DAGS, load_dag, run_dag, sql_jobs, state_name, task_states

DAGS = TEST_DAGS / "carto_operator_dags.py"
MODES = ["polling", "deferrable"]


@pytest.fixture
def worst_case(fast_carto):
    """The emulator reporting success and failure both as ``done``, told apart by ``error`` only."""
    sql_api(fast_carto.state).settings.status_words = dict(WORST_CASE_WORDS)
    return fast_carto


def run_operator(operator: CartoSQLOperator, mode: str):
    """``execute`` as Airflow runs it: polling, or deferring and resuming with the trigger's event."""
    if mode == "polling":
        operator.deferrable = False
        return operator.execute({})
    operator.deferrable = True
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    event = asyncio.run(anext(deferred.value.trigger.run()))
    return operator.execute_complete({}, event.payload)


@pytest.mark.parametrize("mode", MODES)
def test_done_with_an_error_fails_the_task_with_carto_code_and_message(worst_case, mode):
    operator = CartoSQLOperator(
        task_id="bad", sql=f"SELECT nope FROM `{PROJECT}.shared.gone`", poll_interval=0.1
    )
    with pytest.raises(CartoJobError) as info:
        run_operator(operator, mode)
    (job,) = sql_jobs(worst_case)
    assert job.state == "failure" and job.error_code == "notFound" and "gone" in job.error
    assert str(info.value).endswith(f"failed (status 'done'): notFound: {job.error}")


@pytest.mark.parametrize("mode", MODES)
def test_done_without_an_error_succeeds(worst_case, mode):
    ids = run_operator(CartoSQLOperator(task_id="ok", sql="SELECT 1 AS x", poll_interval=0.1), mode)
    assert ids["status"] == "done"


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_job_fails_its_dag_run_in_the_worst_case_vocabulary(
    airflow_db, worst_case, test_dags_bundle, mode
):
    run = run_dag(load_dag(DAGS, f"carto_fail_{mode}"))
    assert state_name(run.state) == "failed"
    assert task_states(run) == {"bad_sql": "failed"}
    assert [(job.state, job.error_code) for job in sql_jobs(worst_case)] == [("failure", "notFound")]


@pytest.mark.parametrize("mode", MODES)
def test_the_operator_timeout_cancels_the_job_once_and_names_its_status(fast_carto, mode):
    sql_api(fast_carto.state).settings.job_duration = 30
    operator = CartoSQLOperator(
        task_id="slow", sql="SELECT 1", poll_interval=0.1, timeout=dt.timedelta(seconds=0.5)
    )
    with pytest.raises(
        CartoJobTimeout, match=r"was still 'running' when the wait's time ran out; it has been"
    ):
        run_operator(operator, mode)
    operator.on_kill()  # Airflow may still call it: the job is cancelled once all the same
    (job,) = sql_jobs(fast_carto)
    assert fast_carto.calls(f"DELETE /v3/sql/carto_dw/job/{job.job_id}") == 1
    assert job.state == "cancelled"


@pytest.mark.parametrize("mode", MODES)
def test_execution_timeout_in_a_dag_run_deletes_the_job_exactly_once(
    airflow_db, fast_carto, test_dags_bundle, mode
):
    sql_api(fast_carto.state).settings.job_duration = 60
    try:
        run = run_dag(load_dag(DAGS, f"carto_timeout_{mode}"))
    except BaseException as exc:  # Airflow 2's dag.test() re-raises AirflowTaskTimeout
        if "Timeout" not in type(exc).__name__:
            raise
        run = None
    if run is not None:
        assert task_states(run) == {"slow_job": "failed"}
    (job,) = sql_jobs(fast_carto)
    assert fast_carto.calls(f"DELETE /v3/sql/carto_dw/job/{job.job_id}") == 1
    assert job.state == "cancelled"


@pytest.mark.parametrize("mode", MODES)
def test_an_unknown_status_is_warned_once_and_ends_within_the_bound(fast_carto, caplog, mode):
    settings = sql_api(fast_carto.state).settings
    settings.job_duration, settings.status_words["running"] = 30, "Churning"
    operator = CartoSQLOperator(task_id="odd", sql="SELECT 1", poll_interval=0.1, timeout=1.0)
    with caplog.at_level(logging.WARNING, logger="carto_provider"), pytest.raises(CartoJobTimeout) as info:
        run_operator(operator, mode)
    assert "was still 'Churning'" in str(info.value)
    warnings = [
        r for r in caplog.records if "'Churning', which this provider does not know" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert fast_carto.calls("GET /v3/sql/carto_dw/job/*") > 2  # polled on after the warning
    assert fast_carto.calls("DELETE /v3/sql/carto_dw/job/*") == 1


def test_an_error_reported_while_running_fails_at_once(fast_carto):
    """The error decides, not the status: an event carrying ``running`` + an error is a failure."""
    event = {
        "status": "failed",
        "job_id": "j1",
        "message": "",
        "job": {"kind": "SQL job", "job_id": "j1", "status": "running", "error": "quotaExceeded: too much"},
    }
    with pytest.raises(CartoJobError, match=r"failed \(status 'running'\): quotaExceeded: too much"):
        job_from_event(event)


@pytest.mark.parametrize("error", [{}, "", None])
def test_an_empty_error_is_no_error(error):
    from carto_provider.api.jobs import CartoJob

    job = CartoJob.from_response("SQL job", {"jobId": "j", "status": "done", "error": error})
    assert job.error is None and job.outcome == "success"
