"""One DAG run of item 5 with real Airflow: ``dag.test()`` on SQLite, the worker slot timed.

``python -m benchmarks.deferral_task DAG_ID`` (environment: an ``AIRFLOW_HOME`` with a migrated
SQLite database, the DAGs folder ``benchmarks/dags`` and ``carto_default`` pointing at the emulator).

``dag.test()`` runs a task the way a worker does, through the Task SDK's ``run_task_in_process``:
once for ``execute()`` and, when the task defers, again for ``execute_complete()`` after running the
trigger in line (``_run_inline_trigger``), which a deployment runs in the triggerer instead. Timing
those calls separates the seconds a worker slot is held (``slot``) from the seconds spent in the
trigger (``trigger``); timing the operator's ``execute``/``execute_complete`` (``operator``) shows
how much of the slot is the operator's own code rather than the task runner's start-up.
Like the burst processes, it reports ``ready`` once Airflow is imported and the DAG loaded, then
starts at the instant the harness sends, so all jobs run at the same time. Prints one JSON line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

DAG_FILE = Path(__file__).resolve().parent / "dags" / "carto_bench_deferral.py"


def load_dag(dag_id: str) -> Any:
    """The DAG object ``dag_id`` from :data:`DAG_FILE`."""
    spec = importlib.util.spec_from_file_location("carto_bench_deferral", DAG_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, dag_id)


def timed(segments: list[dict[str, Any]], kind: str, function: Any) -> Any:
    """``function``, recording the wall time of each call in ``segments`` (raising counts too:
    ``execute()`` ends by raising ``TaskDeferred`` when it defers)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.time()
        try:
            return function(*args, **kwargs)
        finally:
            segments.append({"kind": kind, "start": started, "end": time.time()})

    return wrapper


def time_segments(segments: list[dict[str, Any]], operator: Any) -> None:
    """Time every task run (``slot``), inline trigger run (``trigger``) and operator call
    (``operator``: ``execute`` and ``execute_complete``)."""
    import airflow.sdk.definitions.dag as dag_module
    from airflow.sdk.execution_time import supervisor

    supervisor.run_task_in_process = timed(segments, "slot", supervisor.run_task_in_process)
    dag_module._run_inline_trigger = timed(segments, "trigger", dag_module._run_inline_trigger)
    operator.execute = timed(segments, "operator", operator.execute)
    operator.execute_complete = timed(segments, "operator", operator.execute_complete)


def warm_up_in_process_api() -> None:
    """Build ``dag.test()``'s in-process execution API now, before the timed start: a real worker
    talks to an API server that is already running, so its set-up is no part of a worker slot."""
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    assert in_process_api_server().transport is not None


def task_instances(run_id: str, dag_id: str) -> list[dict[str, Any]]:
    """What Airflow recorded for the run's task instances."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).all()
        return [
            {
                "task_id": ti.task_id,
                "state": str(ti.state),
                "duration": ti.duration,
                "try_number": ti.try_number,
            }
            for ti in rows
        ]


def main(argv: list[str]) -> int:
    dag_id = argv[0]
    # The harness reads this process's stdout for the protocol only; Airflow's output goes to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    segments: list[dict[str, Any]] = []
    dag = load_dag(dag_id)
    time_segments(segments, type(dag.get_task("sql_job")))
    warm_up_in_process_api()
    print("ready", file=protocol, flush=True)
    start = float(sys.stdin.readline())
    time.sleep(max(0.0, start - time.time()))
    run = dag.test()
    finished = time.time()
    result = {
        "dag_id": dag_id,
        "state": str(run.state),
        "wall": finished - start,
        "segments": segments,
        "task_instances": task_instances(run.run_id, dag_id),
    }
    print(json.dumps(result, default=str), file=protocol, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
