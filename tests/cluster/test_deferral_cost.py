"""Worker-slot seconds of the daily ETL, deferrable (the compose settings) vs polling (the same
workers restarted with ``[operators] default_deferrable = false``), with CARTO jobs of a few seconds.

A worker slot is held while a task instance is ``running``; a ``deferred`` one holds none. The API is
sampled every half second and the running task instances are summed over time.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from carto_provider.testing.routes.imports import imports_api
from tests.cluster.jobs import sql_jobs_taking

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

DAG_ID = "carto_daily_etl"
JOB_SECONDS = 8.0
SAMPLE_EVERY = 0.5


def run_and_count_slot_seconds(cluster) -> tuple[str, float, float, int]:
    """Run the ETL once: (final state, wall seconds, worker-slot seconds, trigger log files)."""
    api = cluster.api
    started = time.monotonic()
    run_id = api.trigger(DAG_ID)
    slot_seconds, last = 0.0, started
    while (state := api.run_state(DAG_ID, run_id)) not in {"success", "failed"}:
        running = sum(ti["state"] == "running" for ti in api.task_instances(DAG_ID, run_id).values())
        now = time.monotonic()
        slot_seconds += running * (now - last)
        last = now
        if now - started > 300:
            raise TimeoutError(f"{DAG_ID} run {run_id} still {state} after 300 s")
        time.sleep(SAMPLE_EVERY)
    task_ids = api.task_instances(DAG_ID, run_id)
    triggered = sum(
        any(".log.trigger." in name for name in cluster.task_logs(DAG_ID, run_id, task)) for task in task_ids
    )
    return state, time.monotonic() - started, slot_seconds, triggered


def test_deferrable_daily_etl_holds_worker_slots_only_to_start_jobs(cluster, figures):
    cluster.api.unpause(DAG_ID)
    importing = imports_api(cluster.carto.state).settings
    with ExitStack() as stack:
        stack.enter_context(sql_jobs_taking(cluster.carto, JOB_SECONDS))
        before, importing.duration = importing.duration, JOB_SECONDS
        stack.callback(setattr, importing, "duration", before)
        deferrable = run_and_count_slot_seconds(cluster)
        cluster.reconfigure_workers(AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="false")
        stack.callback(cluster.reconfigure_workers, AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="true")
        polling = run_and_count_slot_seconds(cluster)
    assert deferrable[0] == polling[0] == "success"
    assert deferrable[3] == 4 and polling[3] == 0  # four CARTO waits in the triggerer, then none
    figures.update(
        etl_job_seconds=JOB_SECONDS,
        etl_deferrable_wall=deferrable[1],
        etl_deferrable_slot_seconds=deferrable[2],
        etl_polling_wall=polling[1],
        etl_polling_slot_seconds=polling[2],
    )
