"""DAGs of the cluster scenarios (tests/cluster): small, fast, and each CARTO job marked with its task.

* ``cluster_fleet``: two tasks that get a CARTO token and call the CARTO API (run many at once);
* ``cluster_polling_job``: one SQL job waited for by polling in the worker, with retries;
* ``cluster_deferred_jobs``: three SQL jobs waited for in the triggerer.

Each job's SQL carries ``<run_id>/<task_id>``, so the emulator's job list says which task started it.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.operators.sql import CartoSQLOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
#: The SQL of a marked job: the emulator records it with the job.
MARKED_SQL = "SELECT '{{ run_id }}/{{ task.task_id }}' AS marker"


@dag(dag_id="cluster_fleet", schedule=None, start_date=START, catchup=False, max_active_runs=32)
def cluster_fleet() -> None:
    @task
    def call_carto() -> int:
        """A token (from the fleet's cache) and one CARTO API call."""
        hook = CartoAuthHook()
        hook.get_access_token()
        answer = hook.request("GET", "/v3/connections")
        answer.raise_for_status()
        return answer.status_code

    call_carto.override(task_id="call_carto_a")()
    call_carto.override(task_id="call_carto_b")()


@dag(dag_id="cluster_polling_job", schedule=None, start_date=START, catchup=False)
def cluster_polling_job() -> None:
    CartoSQLOperator(
        task_id="polled_job",
        sql=MARKED_SQL,
        deferrable=False,
        retries=2,
        retry_delay=timedelta(seconds=1),
    )


@dag(dag_id="cluster_deferred_jobs", schedule=None, start_date=START, catchup=False)
def cluster_deferred_jobs() -> None:
    for name in ("deferred_a", "deferred_b", "deferred_c"):
        CartoSQLOperator(task_id=name, sql=MARKED_SQL, deferrable=True)


cluster_fleet()
cluster_polling_job()
cluster_deferred_jobs()
