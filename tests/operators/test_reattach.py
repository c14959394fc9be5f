"""Crash safety: a task SIGKILLed mid-job and run again reattaches to its CARTO job (one job in all).

The first try runs the operator in a child process, killed with SIGKILL while it polls its job; the
second try of the same task instance finds the job by the CARTO ``metadata`` it was tagged with and
waits for it instead of submitting the SQL again.
"""

# ruff: noqa: S608 - the child is this interpreter running the test's own code and SQL

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from carto_provider.api.identity import SOURCE
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.operators.sql import CartoSQLOperator
from carto_provider.testing.routes.sql import sql_api
from tests.carto_jobs_support import PROJECT, REPO, rows, sql_jobs

RUN_STARTED = dt.datetime(2026, 2, 3, 6, 0, tzinfo=dt.timezone.utc)
BUILD = f"CREATE TABLE `{PROJECT}.shared.built_once` AS SELECT 1 AS x"
CHILD = f"""
import datetime as dt
from types import SimpleNamespace
from carto_provider.operators.sql import CartoSQLOperator
ti = SimpleNamespace(dag_id="etl", task_id="build", run_id="scheduled__1", map_index=-1, try_number=1)
context = {{"ti": ti, "dag_run": SimpleNamespace(start_date=dt.datetime.fromisoformat("{RUN_STARTED.isoformat()}"))}}
CartoSQLOperator(task_id="build", sql={BUILD!r}, deferrable=False, poll_interval=0.1).execute(context)
"""


def task_context(try_number: int, task_id: str = "build") -> dict:
    ti = SimpleNamespace(
        dag_id="etl", task_id=task_id, run_id="scheduled__1", map_index=-1, try_number=try_number
    )
    return {"ti": ti, "dag_run": SimpleNamespace(start_date=RUN_STARTED)}


def first_try_sigkilled_while_polling(carto) -> int:
    """Run try 1 in a child process; SIGKILL it once it has polled its running job."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while carto.calls("GET /v3/sql/carto_dw/job/*") == 0:
        assert child.poll() is None, child.stderr.read().decode()[-3000:] if child.stderr else ""
        assert time.monotonic() < deadline, "the child never polled its job"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    return child.returncode


def test_a_sigkilled_task_retried_reattaches_to_its_job(fast_carto):
    sql_api(fast_carto.state).settings.job_duration = 3
    assert first_try_sigkilled_while_polling(fast_carto) == -signal.SIGKILL
    (job,) = sql_jobs(fast_carto)
    assert job.active and job.fields["metadata"]["try_number"] == 1

    ids = CartoSQLOperator(task_id="build", sql=BUILD, deferrable=False, poll_interval=0.1).execute(
        task_context(2)
    )

    assert [j.job_id for j in sql_jobs(fast_carto)] == [job.job_id]  # one CARTO job in all
    assert fast_carto.calls("POST /v3/sql/carto_dw/job") == 1
    assert ids["job_id"] == job.job_id and ids["status"] == "success"
    assert rows(fast_carto, f"SELECT x FROM `{PROJECT}.shared.built_once`") == [{"x": 1}]


def test_a_deferred_task_that_lost_its_trigger_reattaches_on_the_next_try(fast_carto):
    sql_api(fast_carto.state).settings.job_duration = 2
    operator = CartoSQLOperator(task_id="build", sql=BUILD, deferrable=True, poll_interval=0.1)
    with pytest.raises(TaskDeferred):
        operator.execute(task_context(1))  # ... and its trigger is lost (triggerer killed)
    retry = CartoSQLOperator(task_id="build", sql=BUILD, deferrable=True, poll_interval=0.1)
    with pytest.raises(TaskDeferred) as deferred:
        retry.execute(task_context(2))
    (job,) = sql_jobs(fast_carto)
    assert deferred.value.trigger.job_id == job.job_id
    event = asyncio.run(anext(deferred.value.trigger.run()))
    assert retry.execute_complete({}, event.payload)["job_id"] == job.job_id


def test_jobs_carry_the_task_in_their_metadata(fast_carto):
    CartoSQLOperator(task_id="t", sql="SELECT 1", deferrable=False, poll_interval=0.1).execute(
        task_context(3, "t")
    )
    (job,) = sql_jobs(fast_carto)
    metadata = job.fields["metadata"]
    assert {k: metadata[k] for k in ("source", "dag_id", "task_id", "run_id", "map_index", "try_number")} == {
        "source": SOURCE,
        "dag_id": "etl",
        "task_id": "t",
        "run_id": "scheduled__1",
        "map_index": -1,
        "try_number": 3,
    }
    listed = CartoSQLHook().list_jobs(metadata={"dag_id": "etl", "task_id": "t"})
    assert [item["externalId"] for item in listed] == [job.job_id]
    assert json.dumps(metadata)  # JSON-safe, nothing secret in it


@pytest.mark.parametrize(
    ("reattach_states", "first_sql", "jobs"),
    [
        (("running", "success"), "SELECT 1", 1),  # a succeeded job is not run again
        ((), "SELECT 1", 2),  # reattaching switched off
        (("running", "success"), "SELECT * FROM `nowhere.x.y`", 2),  # a failed job is run again
    ],
)
def test_a_retry_reattaches_only_to_a_running_or_succeeded_job(fast_carto, reattach_states, first_sql, jobs):
    def operator(sql: str) -> CartoSQLOperator:
        return CartoSQLOperator(
            task_id="t", sql=sql, deferrable=False, poll_interval=0.1, reattach_states=reattach_states
        )

    with contextlib.suppress(Exception):  # a failing SQL fails both tries
        operator(first_sql).execute(task_context(1, "t"))
    with contextlib.suppress(Exception):
        operator(first_sql).execute(task_context(2, "t"))
    assert len(list(sql_jobs(fast_carto))) == jobs


def test_a_retry_with_other_sql_does_not_reattach(fast_carto):
    CartoSQLOperator(task_id="t", sql="SELECT 1", deferrable=False, poll_interval=0.1).execute(
        task_context(1, "t")
    )
    CartoSQLOperator(task_id="t", sql="SELECT 2", deferrable=False, poll_interval=0.1).execute(
        task_context(2, "t")
    )
    assert len(list(sql_jobs(fast_carto))) == 2


def test_a_rerun_of_the_same_try_number_starts_anew(fast_carto):
    """Not a retry (e.g. a run re-created for the same date): the earlier job is not reused."""
    for _ in range(2):
        CartoSQLOperator(task_id="t", sql="SELECT 1", deferrable=False, poll_interval=0.1).execute(
            task_context(1, "t")
        )
    assert len(list(sql_jobs(fast_carto))) == 2


class StateStore(dict):
    """What Airflow 3.3 hands a task as ``context["task_state_store"]`` (get/set), kept across tries."""

    def set(self, key, value):
        self[key] = value


class BrokenStateStore:
    def get(self, key, default=None):
        raise RuntimeError("state store backend down")

    set = get


def stores_import(fast_carto, **kwargs):
    """The polling import of the emulator's stores file that the task_state_store tests run."""
    from carto_provider.operators.imports import CartoImportOperator

    return CartoImportOperator(
        task_id="load",
        url=f"{fast_carto.url}/emulator/files/stores.geojson",
        destination=f"{PROJECT}.shared.stores",
        poll_interval=0.1,
        deferrable=False,
        **kwargs,
    )


def test_an_import_is_found_again_through_the_task_state_store(fast_carto):
    from carto_provider.testing.routes.imports import imports_api

    imports_api(fast_carto.state).settings.duration = 1.0
    store = StateStore()

    def try_number(n: int, **kwargs) -> dict:
        context = {**task_context(n, "load"), "task_state_store": store}
        return stores_import(fast_carto, **kwargs).execute(context)

    first = try_number(1, wait_for_completion=False)  # ... and the worker dies
    assert store == {"carto_import_id": first["job_id"]}
    second = try_number(2)
    assert second["job_id"] == first["job_id"] and second["rows_imported"] == 5
    assert fast_carto.calls("POST /v3/imports") == 1


def test_a_failing_task_state_store_never_fails_the_task(fast_carto):
    context = {**task_context(1, "load"), "task_state_store": BrokenStateStore()}
    result = stores_import(fast_carto).execute(context)
    assert result["rows_imported"] == 5
