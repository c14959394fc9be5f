# ruff: noqa: S608 - the SQL is built from the test's own constants
"""``end_from_trigger``: the trigger ends the task itself (TaskSuccessEvent / TaskFailedEvent), against
the emulator, with the trigger rebuilt from its stored kwargs as the triggerer does."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest
from airflow.providers.common.compat.sdk import AirflowSkipException, TaskDeferred
from airflow.triggers.base import TaskFailedEvent, TaskSuccessEvent, TriggerEvent

from carto_provider.api.jobs import CartoJob, job_from_event
from carto_provider.errors import CartoJobError
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.operators.imports import CartoImportOperator
from carto_provider.operators.sql import CartoSQLOperator
from carto_provider.sensors.imports import CartoImportSensor
from carto_provider.sensors.sql import CartoSQLJobSensor
from carto_provider.testing.routes.sql import sql_api
from carto_provider.triggers.base import CartoJobTrigger, failure_ends_in_trigger
from tests.carto_jobs_support import PROJECT, sql_jobs
from tests.triggers.test_triggers import rebuilt


def deferred_trigger(operator) -> CartoJobTrigger:
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    return rebuilt(deferred.value.trigger)


def end_event(trigger: CartoJobTrigger) -> TriggerEvent:
    return asyncio.run(anext(trigger.run()))


def test_a_succeeded_job_ends_the_task_with_its_return_value(fast_carto):
    operator = CartoSQLOperator(
        task_id="ok", sql="SELECT 1 AS x", deferrable=True, end_from_trigger=True, poll_interval=0.1
    )
    event = end_event(deferred_trigger(operator))
    assert isinstance(event, TaskSuccessEvent)
    value = event.xcoms["return_value"]
    (job,) = sql_jobs(fast_carto)
    # The job is polled with the id it was created with (externalId); a read's jobId is reported_id.
    assert value == {
        "job_id": job.job_id,
        "external_id": job.job_id,
        "connection": "carto_dw",
        "status": "success",
        "reported_id": None,
    }
    # `airflow dags test` resumes the task with the payload: it decodes to the same return value.
    assert operator.execute_complete({}, event.payload) == value


def test_an_import_ends_with_the_operators_result(fast_carto):
    operator = CartoImportOperator(
        task_id="imp",
        url=f"{fast_carto.url}/emulator/files/stores.geojson",
        destination=f"{PROJECT}.shared.stores",
        overwrite=True,
        deferrable=True,
        end_from_trigger=True,
        poll_interval=0.1,
    )
    event = end_event(deferred_trigger(operator))
    assert isinstance(event, TaskSuccessEvent)
    value = event.xcoms["return_value"]
    assert value["rows_imported"] == 5 and value["destination"] == f"{PROJECT}.shared.stores"
    assert "url" not in value["body"]
    sensor = CartoImportSensor(
        task_id="watch", job_id=value["job_id"], deferrable=True, end_from_trigger=True
    )
    trigger = CartoJobTrigger(
        job_id=value["job_id"], kind="import", end_from_trigger=True, result="import_status"
    )
    assert sensor.result_shape == "import_status"
    assert end_event(rebuilt(trigger)).xcoms["return_value"] == {
        k: v for k, v in value.items() if k != "body"
    }


def test_a_failed_job_fails_the_task_with_carto_error(fast_carto, caplog, capsys):
    operator = CartoSQLOperator(
        task_id="bad",
        sql=f"SELECT * FROM `{PROJECT}.shared.absent`",
        deferrable=True,
        end_from_trigger=True,
        poll_interval=0.1,
    )
    with caplog.at_level(logging.ERROR):
        event = end_event(deferred_trigger(operator))
    (job,) = sql_jobs(fast_carto)
    if failure_ends_in_trigger():
        assert isinstance(event, TaskFailedEvent) and not event.xcoms
        # The trigger's log (structlog on Airflow 3: stdout; logging on Airflow 2) names CARTO's error.
        assert f"{job.error_code}: {job.error}" in caplog.text + capsys.readouterr().out
    else:  # Airflow < 3.3 would not retry it: the task resumes and raises
        assert type(event) is TriggerEvent
    with pytest.raises(CartoJobError, match="absent"):
        operator.execute_complete({}, event.payload)


def test_a_timeout_still_resumes_the_task(fast_carto):
    sql_api(fast_carto.state).settings.job_duration = 30
    operator = CartoSQLOperator(
        task_id="slow",
        sql="SELECT 1",
        deferrable=True,
        end_from_trigger=True,
        poll_interval=0.1,
        timeout=dt.timedelta(seconds=0.5),
    )
    event = end_event(deferred_trigger(operator))
    assert type(event) is TriggerEvent and event.payload["status"] == "timeout"


class OwnResult(CartoSQLOperator):
    def result(self, job: CartoJob) -> str:
        return job.job_id


def test_a_task_with_its_own_result_resumes_on_a_worker(fast_carto):
    operator = OwnResult(
        task_id="own", sql="SELECT 1", deferrable=True, end_from_trigger=True, poll_interval=0.1
    )
    trigger = deferred_trigger(operator)
    assert trigger.end_from_trigger is False
    event = end_event(trigger)
    assert operator.execute_complete({}, event.payload) == job_from_event(event.payload).job_id


def test_the_default_comes_from_the_carto_config(fast_carto, monkeypatch):
    assert CartoSQLOperator(task_id="a", sql="SELECT 1").end_from_trigger is False
    monkeypatch.setenv("AIRFLOW__CARTO__END_FROM_TRIGGER", "true")
    assert CartoSQLOperator(task_id="b", sql="SELECT 1").end_from_trigger is True
    assert CartoImportSensor(task_id="c", job_id="j").end_from_trigger is True


def test_a_sensor_ends_in_the_trigger_on_success_only(fast_carto):
    """A failed job resumes a sensor on a worker, where soft_fail (here: skip) decides, on every Airflow."""
    failing = CartoSQLHook().submit_job(f"SELECT * FROM `{PROJECT}.shared.absent`")
    sensor = CartoSQLJobSensor(
        task_id="watch", job_id=failing.job_id, deferrable=True, end_from_trigger=True, soft_fail=True
    )
    trigger = deferred_trigger(sensor)
    assert trigger.end_from_trigger is True and trigger.end_failures is False
    event = end_event(trigger)
    assert type(event) is TriggerEvent and event.payload["status"] == "failed"
    with pytest.raises(AirflowSkipException, match="absent"):
        sensor.execute_complete({}, event.payload)

    ok = CartoSQLHook().submit_job("SELECT 1")
    sensor = CartoSQLJobSensor(task_id="ok", job_id=ok.job_id, deferrable=True, end_from_trigger=True)
    event = end_event(deferred_trigger(sensor))
    assert isinstance(event, TaskSuccessEvent)
    value = event.xcoms["return_value"]
    assert value["job_id"] == ok.job_id and value["status"] == "success"
    assert sensor.execute_complete({}, event.payload) == value  # what a resumed sensor returns
