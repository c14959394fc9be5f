"""One DAG run on the cluster, watched: its final state, its time, and the worker slots it held.

A worker slot is held while a task instance is ``running``; a ``deferred`` one holds none. The API is
sampled every 0.1 s and the running task instances are summed over time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from carto_provider.testing.emulator import CartoEmulator
from carto_provider.testing.routes.imports import imports_api
from tests.cluster.harness import AirflowCluster
from tests.cluster.jobs import sql_jobs_taking

#: Short enough to see a deferrable task's few tenths of a second of running before it defers.
SAMPLE_EVERY = 0.1


@dataclass(frozen=True)
class RunCost:
    """What one run took."""

    run_id: str
    state: str
    wall_seconds: float
    slot_seconds: float
    #: Task instances with a log file a triggerer wrote (their wait ran in the triggerer).
    trigger_waits: int


def run_and_count_slot_seconds(cluster: AirflowCluster, dag_id: str, timeout: float = 300) -> RunCost:
    """Trigger ``dag_id`` through the API, once the scheduler's own runs of it are over, and watch
    the run to its end."""
    api = cluster.api
    api.wait_until_idle(dag_id)
    started = time.monotonic()
    run_id = api.trigger(dag_id)
    slot_seconds, last = 0.0, started
    while (state := api.run_state(dag_id, run_id)) not in {"success", "failed"}:
        running = sum(ti["state"] == "running" for ti in api.task_instances(dag_id, run_id).values())
        now = time.monotonic()
        slot_seconds += running * (now - last)
        last = now
        if now - started > timeout:
            raise TimeoutError(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s")
        time.sleep(SAMPLE_EVERY)
    wall = time.monotonic() - started
    waits = sum(
        any(".log.trigger." in name for name in cluster.task_logs(dag_id, run_id, task))
        for task in api.task_instances(dag_id, run_id)
    )
    return RunCost(run_id, state, wall, slot_seconds, waits)


@contextmanager
def carto_jobs_taking(carto: CartoEmulator, seconds: float) -> Iterator[None]:
    """SQL jobs and imports started meanwhile take ``seconds`` at the emulator."""
    importing = imports_api(carto.state).settings
    before, importing.duration = importing.duration, seconds
    try:
        with sql_jobs_taking(carto, seconds):
            yield
    finally:
        importing.duration = before
