"""``carto_daily_etl`` on the Celery cluster, triggered through the REST API with a JWT: it succeeds,
its CARTO waits ran in the triggerer and the tasks ended there (the compose settings make operators
deferrable and set ``[carto] end_from_trigger``), with their return values as XComs."""

from __future__ import annotations

import pytest

from tests.cluster.runs import carto_jobs_taking, run_and_count_slot_seconds

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

DAG_ID = "carto_daily_etl"
#: The tasks that wait for a CARTO job (import, SQL jobs, workflow); top_stores is a direct query.
JOB_TASKS = ("import_sales", "sales_by_store_day", "install_workflow", "run_top_stores_workflow")
#: How long each CARTO job takes (also in test_polling_cost.py, the same run polling).
JOB_SECONDS = 5.0


def test_daily_etl_succeeds_and_waits_in_the_triggerer(cluster, figures):
    cluster.api.unpause(DAG_ID)
    with carto_jobs_taking(cluster.carto, JOB_SECONDS):
        run = run_and_count_slot_seconds(cluster, DAG_ID)
    assert run.state == "success"
    figures.update(
        daily_etl_seconds=run.wall_seconds,
        etl_job_seconds=JOB_SECONDS,
        etl_deferrable_slot_seconds=run.slot_seconds,
    )

    task_instances = cluster.api.task_instances(DAG_ID, run.run_id)
    assert {ti["state"] for ti in task_instances.values()} == {"success"}
    assert {ti["hostname"] for ti in task_instances.values()} <= {"worker-1", "worker-2"}
    assert run.trigger_waits == len(JOB_TASKS)
    for task_id in JOB_TASKS:
        logs = cluster.task_logs(DAG_ID, run.run_id, task_id)
        # The worker started the job and gave its slot back...
        assert "Pausing task as DEFERRED" in logs["attempt=1.log"], task_id
        # ...the triggerer (its own log file next to the task's) waited, saw the job succeed and ended
        # the task there: no second worker process to decode the event...
        waited = [text for name, text in logs.items() if ".log.trigger." in name]
        assert len(waited) == 1, (task_id, sorted(logs))
        assert "the task ends in the triggerer" in waited[0], task_id
        # ...its return value is the XCom a worker would have pushed, and CARTO was asked about that
        # job while the task was deferred.
        job_id = cluster.api.return_value(DAG_ID, run.run_id, task_id)["job_id"]
        assert cluster.carto.calls(f"GET */{job_id}") >= 1, (task_id, job_id)
