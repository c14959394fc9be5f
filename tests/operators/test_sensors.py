"""CartoSQLJobSensor watching jobs started elsewhere: success, failure, deferral, and never cancelling."""

from __future__ import annotations

import asyncio

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, TaskDeferred

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


def test_a_failed_job_fails_the_sensor_with_carto_error(fast_carto):
    job = CartoSQLHook().submit_job("SELECT * FROM `carto-dw-ac-emulator.shared.lost`")
    with pytest.raises(CartoJobError, match="lost"):
        sensor(job.job_id, deferrable=False).execute({})


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
