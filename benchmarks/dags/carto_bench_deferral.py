"""Item 5 of the benchmarks: one 60-second CARTO SQL job, waited for by deferring or by polling.

``make bench`` runs each DAG with real Airflow (``dag.test()`` on SQLite) against the emulator, whose
SQL jobs are set to take 60 s; see ``benchmarks/deferral.py``.
"""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef]

from carto_provider.operators.sql import CartoSQLOperator

#: The operator's default longest wait between two status checks ([carto] poll_interval).
POLL_INTERVAL = 10.0

for mode, deferrable in (("deferrable", True), ("polling", False)):
    with DAG(
        dag_id=f"carto_bench_sql_{mode}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["carto", "benchmark"],
    ) as dag:
        CartoSQLOperator(
            task_id="sql_job",
            sql="SELECT 1 AS one",
            deferrable=deferrable,
            poll_interval=POLL_INTERVAL,
        )
    globals()[dag.dag_id] = dag
