"""Daily ETL on CARTO: import the day's sales file, aggregate it with a SQL job, run a CARTO Workflow,
and check the result with a query.

    import_sales ──> sales_by_store_day ──> run_top_stores_workflow ──> top_stores ──> check_top_stores
                          install_workflow ──┘

Every CARTO step waits for its job by polling or, with ``deferrable=True`` (or the Airflow option
``[operators] default_deferrable = True``), in the triggerer, which frees the worker slot while CARTO
works. Re-running a day replaces that day's rows, so runs and backfills are idempotent.

Offline (``make demo``), ``carto_default`` is the CARTO emulator: it serves a generated sales file for
every day, runs the SQL on DuckDB, and keeps the procedure ``install_workflow`` creates.

With your CARTO account: set the params ``dataset`` (e.g. ``carto-dw-ac-xxxx.shared``) and
``workflow_procedure`` (from your workflow's API dialog, then delete ``install_workflow``), and point
``SOURCE_URL`` at where your daily file is published.
"""

from __future__ import annotations

from typing import Any

import pendulum

try:  # Airflow 3
    from airflow.sdk import Param, dag, task
except ImportError:  # Airflow 2.x
    from airflow.decorators import dag, task  # type: ignore[no-redef]
    from airflow.models.param import Param  # type: ignore[no-redef,assignment]

from carto_provider.operators.imports import CartoImportOperator
from carto_provider.operators.sql import CartoQueryOperator, CartoSQLOperator
from carto_provider.operators.workflows import CartoRunWorkflowOperator

#: The day's file. The emulator behind ``carto_default`` serves one per day; use your own public URL.
SOURCE_URL = "{{ conn.carto_default.host }}/emulator/files/daily_sales/{{ ds }}.csv"
#: The workflow's ``min_revenue`` parameter: stores below it do not make the day's ranking.
MIN_REVENUE = 50.0
RUN_DATE = {"run_date": "{{ ds }}"}
#: ``project.dataset``: these params are spliced into SQL text, and whoever may trigger a run can
#: override them (``dag_run.conf``), so Airflow checks them against these patterns first.
DATASET = r"^[a-z][a-z0-9-]{4,61}[a-z0-9]\.[A-Za-z0-9_]{1,1024}$"
PROCEDURE = r"^[a-z][a-z0-9-]{4,61}[a-z0-9]\.[A-Za-z0-9_]{1,1024}\.[A-Za-z0-9_]{1,1024}$"


@dag(
    dag_id="carto_daily_etl",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"carto_conn_id": "carto_default"},
    params={
        "dataset": Param("carto-dw-ac-emulator.shared", type="string", pattern=DATASET),
        "workflow_procedure": Param(
            "carto-dw-ac-emulator.workflows_temp.wfproc_daily_top_stores", type="string", pattern=PROCEDURE
        ),
    },
    tags=["carto", "example"],
)
def carto_daily_etl() -> None:
    import_sales = CartoImportOperator(
        task_id="import_sales",
        url=SOURCE_URL,
        destination="{{ params.dataset }}.daily_sales_staging",
        overwrite=True,
    )
    sales_by_store_day = CartoSQLOperator(
        task_id="sales_by_store_day",
        sql="sql/carto_daily_etl/sales_by_store_day.sql",
        query_parameters=RUN_DATE,
    )
    install_workflow = CartoSQLOperator(
        task_id="install_workflow",
        sql="sql/carto_daily_etl/top_stores_workflow.sql",
    )
    run_workflow = CartoRunWorkflowOperator(
        task_id="run_top_stores_workflow",
        procedure="{{ params.workflow_procedure }}",
        parameters={"run_date": "{{ ds }}", "min_revenue": MIN_REVENUE},
        # The order of the @names in the dialog's CALL: CARTO refuses INFORMATION_SCHEMA on carto_dw,
        # so the procedure's argument order cannot be read there.
        parameter_order=["run_date", "min_revenue"],
    )
    top_stores = CartoQueryOperator(
        task_id="top_stores",
        sql="SELECT store_id, city, revenue, revenue_rank FROM `{{ params.dataset }}.top_stores_daily` "
        "WHERE sale_date = DATE(@run_date) ORDER BY revenue_rank, store_id",
        query_parameters=RUN_DATE,
        max_rows=100,
    )

    @task
    def check_top_stores(rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Fail the run when the workflow produced no ranking, or a broken one."""
        if not rows:
            raise ValueError(f"No store reached {MIN_REVENUE} in revenue: is the day's file empty?")
        if rows[0]["revenue_rank"] != 1 or any(r["revenue"] < MIN_REVENUE for r in rows):
            raise ValueError(f"The top-stores ranking is inconsistent: {rows}")
        best = rows[0]
        print(
            f"{len(rows)} store(s) ranked; best: store {best['store_id']} ({best['city']}), {best['revenue']}"
        )
        return {
            "stores_ranked": len(rows),
            "best_store_id": best["store_id"],
            "best_revenue": best["revenue"],
        }

    import_sales >> sales_by_store_day >> run_workflow
    install_workflow >> run_workflow
    run_workflow >> top_stores
    check_top_stores(top_stores.output)


dag = carto_daily_etl()
