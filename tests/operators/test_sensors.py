"""CartoSQLJobSensor watching jobs started elsewhere: success, failure, deferral, and never cancelling."""

from __future__ import annotations

import asyncio

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from carto_provider.errors import CartoJobError
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.sensors.sql import CartoSQLJobSensor
from carto_provider.testing.routes.sql import sql_api

# Shared fixtures (pytest finds fixtures among a module's attributes).


def sensor(job_id: str, **kwargs) -> CartoSQLJobSensor:
    return CartoSQLJobSensor(task_id="watch", job_id=job_id, poke_interval=0.1, **kwargs)


def test_pokes_until_the_job_succeeds_and_returns_its_ids(fast_carto):
    job = CartoSQLHook().submit_job("SELECT 1")
    assert sensor(job.job_id, deferrable=False).execute({})["job_id"] == job.job_id


def chain(exc: BaseException | None) -> str:
    """The messages of an exception and its causes."""
    messages = []
    while exc is not None:
        messages.append(str(exc))
        exc = exc.__cause__
    return " <- ".join(messages)


LOST = "SELECT * FROM `carto-dw-ac-emulator.shared.lost`"


def failed_job():
    """A SQL job that has already failed when the sensor first looks."""
    hook = CartoSQLHook()
    job = hook.submit_job(LOST)
    with pytest.raises(CartoJobError):
        hook.wait_for_job(job.job_id, poll_interval=0.1)
    return job


def failed_after_deferral(fast_carto, **kwargs):
    """A sensor deferred on a job that is still running and then fails: what resuming it raises."""
    sql_api(fast_carto.state).settings.job_duration = 0.5
    job = CartoSQLHook().submit_job(LOST)
    watcher = sensor(job.job_id, deferrable=True, **kwargs)
    with pytest.raises(TaskDeferred) as deferred:
        watcher.execute({})
    event = asyncio.run(anext(deferred.value.trigger.run()))
    # How Airflow resumes a deferred task: through the sensor's resume_execution, not execute_complete.
    return lambda: watcher.resume_execution("execute_complete", {"event": event.payload}, {})


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_failed_job_fails_the_sensor_with_carto_error(fast_carto, deferrable):
    job = failed_job()
    with pytest.raises(AirflowFailException, match="lost") as failed:
        sensor(job.job_id, deferrable=deferrable).execute({})
    assert isinstance(failed.value.__cause__, CartoJobError)


def test_a_job_that_fails_after_deferral_fails_the_sensor(fast_carto):
    with pytest.raises(AirflowFailException, match="lost") as failed:
        failed_after_deferral(fast_carto)()
    assert isinstance(failed.value.__cause__, CartoJobError)


@pytest.mark.parametrize("flag", ["soft_fail", "never_fail"])
@pytest.mark.parametrize("deferrable", [False, True])
def test_soft_fail_and_never_fail_skip_on_a_failed_job(fast_carto, deferrable, flag):
    """The job has already failed at the first check (the base sensor's handling, both modes)."""
    job = failed_job()
    with pytest.raises(AirflowSkipException):
        sensor(job.job_id, deferrable=deferrable, **{flag: True}).execute({})


@pytest.mark.parametrize("flag", ["soft_fail", "never_fail"])
def test_soft_fail_and_never_fail_skip_when_the_job_fails_while_deferred(fast_carto, flag):
    with pytest.raises(AirflowSkipException) as skipped:
        failed_after_deferral(fast_carto, **{flag: True})()
    assert "lost" in chain(skipped.value)  # Airflow 3's resume_execution wraps our skip in its own


def test_soft_fail_skips_a_deferred_sensor_that_times_out(fast_carto):
    sql_api(fast_carto.state).settings.job_duration = 30
    job = CartoSQLHook().submit_job("SELECT 1")
    watcher = sensor(job.job_id, deferrable=True, timeout=0.3, soft_fail=True)
    with pytest.raises(TaskDeferred) as deferred:
        watcher.execute({})
    event = asyncio.run(anext(deferred.value.trigger.run()))
    with pytest.raises(AirflowSkipException) as skipped:
        watcher.resume_execution("execute_complete", {"event": event.payload}, {})
    assert "still" in chain(skipped.value)


def test_deferred_sensor_times_out_without_cancelling_the_job(fast_carto):
    sql_api(fast_carto.state).settings.job_duration = 30
    job = CartoSQLHook().submit_job("SELECT 1")
    watcher = sensor(job.job_id, deferrable=True, timeout=0.3)
    with pytest.raises(TaskDeferred) as deferred:
        watcher.execute({})
    assert deferred.value.trigger.cancel_on_kill is False
    event = asyncio.run(anext(deferred.value.trigger.run()))
    with pytest.raises(AirflowSensorTimeout, match="still"):
        watcher.execute_complete({}, event.payload)
    assert fast_carto.calls("DELETE /v3/sql/carto_dw/job/*") == 0
    assert sql_api(fast_carto.state).jobs[job.job_id].state == "running"


@pytest.mark.parametrize("deferrable", [False, True])
def test_submit_without_waiting_then_a_sensor_waits(fast_carto, deferrable):
    from carto_provider.operators.sql import CartoSQLOperator

    sql_api(fast_carto.state).settings.job_duration = 1.0
    ids = CartoSQLOperator(task_id="start", sql="SELECT 1", wait_for_completion=False).execute({})
    assert ids["status"] == "" and sql_api(fast_carto.state).jobs[ids["job_id"]].active  # returned at once
    watcher = sensor(ids["job_id"], deferrable=deferrable)
    if not deferrable:
        assert watcher.execute({})["job_id"] == ids["job_id"]
        return
    with pytest.raises(TaskDeferred) as deferred:
        watcher.execute({})
    event = asyncio.run(anext(deferred.value.trigger.run()))
    assert watcher.execute_complete({}, event.payload)["job_id"] == ids["job_id"]


@pytest.mark.parametrize("deferrable", [False, True])
def test_an_import_submitted_without_waiting_is_awaited_by_its_sensor(fast_carto, deferrable):
    from carto_provider.operators.imports import CartoImportOperator
    from carto_provider.sensors.imports import CartoImportSensor

    started = CartoImportOperator(
        task_id="load",
        url=f"{fast_carto.url}/emulator/files/stores.geojson",
        destination="carto-dw-ac-emulator.shared.stores",
        wait_for_completion=False,
    ).execute({})
    watcher = CartoImportSensor(
        task_id="w", job_id=started["job_id"], poke_interval=0.1, deferrable=deferrable
    )
    if deferrable:
        with pytest.raises(TaskDeferred) as deferred:
            watcher.execute({})
        event = asyncio.run(anext(deferred.value.trigger.run()))
        result = watcher.execute_complete({}, event.payload)
    else:
        result = watcher.execute({})
    assert result["rows_imported"] == 5 and result["job_id"] == started["job_id"]
