"""Test DAGs for the CARTO operators and sensor, each in polling and deferrable mode (tests/dags).

``carto_ops_<mode>``: every operator on the happy path. ``carto_fail_<mode>``: a SQL job that fails.
``carto_kill``: one long SQL job, killed by the test. ``carto_timeout_<mode>``: a job outliving
``execution_timeout``.
"""

from __future__ import annotations

import datetime as dt

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]

from carto_provider.operators.imports import CartoImportOperator
from carto_provider.operators.sql import CartoQueryOperator, CartoSQLOperator
from carto_provider.operators.workflows import CartoRunWorkflowOperator
from carto_provider.sensors.sql import CartoSQLJobSensor

#: The operators' arguments in each mode; ``trigger_ended``: the trigger ends the deferred tasks.
MODES = {
    "polling": {"deferrable": False},
    "deferrable": {"deferrable": True},
    "trigger_ended": {"deferrable": True, "end_from_trigger": True},
}
START = pendulum.datetime(2026, 1, 1, tz="UTC")
FILES = "{{ conn.carto_default.host }}/emulator/files"
PROCEDURE = "carto-dw-ac-emulator.workflows_temp.wfproc_test"
WORKFLOW_SQL = """
CREATE OR REPLACE PROCEDURE `carto-dw-ac-emulator.workflows_temp.wfproc_test`(min_revenue FLOAT64, label STRING)
BEGIN
  CREATE OR REPLACE TABLE `{{ params.dataset }}.best` AS
  SELECT store_id, name, revenue, label AS run_label FROM `{{ params.dataset }}.revenue`
  WHERE revenue >= min_revenue;
END
"""


def operators_dag(mode: str, mode_args: dict) -> DAG:
    with DAG(
        f"carto_ops_{mode}",
        schedule=None,
        start_date=START,
        params={"dataset": "carto-dw-ac-emulator.shared"},
        default_args=mode_args,
    ) as dag:
        stores = CartoImportOperator(
            task_id="import_stores",
            url=f"{FILES}/stores.geojson",
            destination="{{ params.dataset }}.stores",
        )
        sales = CartoImportOperator(
            task_id="import_sales",
            url=f"{FILES}/daily_sales/{{{{ ds }}}}.csv",
            destination="{{ params.dataset }}.sales",
            overwrite=True,
        )
        revenue = CartoSQLOperator(
            task_id="revenue", sql="sql/carto_ops_revenue.sql", query_parameters={"day": "{{ ds }}"}
        )
        install = CartoSQLOperator(task_id="install_workflow", sql=WORKFLOW_SQL)
        workflow = CartoRunWorkflowOperator(
            task_id="run_workflow",
            procedure=PROCEDURE,
            parameters={"min_revenue": 0.0, "label": "run {{ ds }}"},
            parameter_order=["min_revenue", "label"],  # no INFORMATION_SCHEMA on carto_dw
        )
        best = CartoQueryOperator(
            task_id="read_best",
            sql="SELECT * FROM `{{ params.dataset }}.best` ORDER BY revenue DESC, store_id",
        )

        @task
        def start_job() -> dict:
            """A job started outside the operators, for the sensor to watch."""
            from carto_provider.hooks.sql import CartoSQLHook

            return (
                CartoSQLHook()
                .submit_job("SELECT COUNT(*) AS n FROM `carto-dw-ac-emulator.shared.sales`")
                .ids()
            )

        watch = CartoSQLJobSensor(
            task_id="watch_job",
            job_id="{{ ti.xcom_pull(task_ids='start_job')['job_id'] }}",
            poke_interval=0.1,
        )
        [stores, sales] >> revenue >> install >> workflow >> best
        sales >> start_job() >> watch
    return dag


def failing_dag(mode: str, mode_args: dict) -> DAG:
    with DAG(f"carto_fail_{mode}", schedule=None, start_date=START) as dag:
        CartoSQLOperator(
            task_id="bad_sql",
            sql="SELECT missing_column FROM `carto-dw-ac-emulator.shared.no_such_table`",
            **mode_args,
        )
    return dag


for _mode, _args in MODES.items():
    globals()[f"carto_ops_{_mode}"] = operators_dag(_mode, _args)
    globals()[f"carto_fail_{_mode}"] = failing_dag(_mode, _args)

with DAG("carto_kill", schedule=None, start_date=START) as carto_kill:
    CartoSQLOperator(
        task_id="long_job",
        sql="CREATE TABLE `carto-dw-ac-emulator.shared.never_created` AS SELECT 1 AS x",
        deferrable=False,
    )


def timeout_dag(mode: str, mode_args: dict) -> DAG:
    """One SQL job that outlives the task's execution_timeout."""
    with DAG(f"carto_timeout_{mode}", schedule=None, start_date=START) as dag:
        CartoSQLOperator(
            task_id="slow_job",
            sql="CREATE TABLE `carto-dw-ac-emulator.shared.too_late` AS SELECT 1 AS x",
            **mode_args,
            execution_timeout=dt.timedelta(seconds=8),  # room for a token fetch on a loaded machine
        )
    return dag


for _mode, _args in MODES.items():
    globals()[f"carto_timeout_{_mode}"] = timeout_dag(_mode, _args)
