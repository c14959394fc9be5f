# ruff: noqa: S608 - the SQL names the example's own table
"""common.sql on CARTO: load a table with ``SQLExecuteQueryOperator``, check it with the SQL check
operators, wait for it with ``SqlSensor``, read it with ``get_df``.

Every task names only ``conn_id="carto_default"``: Airflow builds ``CartoDbApiHook`` for a ``carto``
connection, and the SQL runs in the CARTO Data Warehouse (BigQuery SQL) through CARTO's SQL API.
``dataset.table`` names resolve in the Data Warehouse's own project.

Trigger it with ``{"bad_rows": true}`` (``airflow dags test carto_common_sql -c '{"bad_rows": true}'``)
to load two bad deliveries: the four check tasks then fail with common.sql's messages.
Run offline with ``make demo``.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.sql.operators.sql import (
    SQLColumnCheckOperator,
    SQLExecuteQueryOperator,
    SQLTableCheckOperator,
    SQLThresholdCheckOperator,
    SQLValueCheckOperator,
)
from airflow.providers.common.sql.sensors.sql import SqlSensor

try:  # Airflow 3
    from airflow.sdk import DAG, Param, task
except ImportError:  # Airflow 2.x
    from airflow.decorators import task  # type: ignore[no-redef]
    from airflow.models import DAG  # type: ignore[no-redef,assignment]
    from airflow.models.param import Param  # type: ignore[no-redef,assignment]

CONN_ID = "carto_default"
TABLE = "shared.airflow_example_deliveries"
#: Deliveries of the day: (id, city, weight in kg).
DELIVERIES = [(1, "Madrid", 2.5), (2, "Madrid", 12.0), (3, "Valencia", 0.8), (4, "Sevilla", 30.0)]
#: What bad_rows adds: a repeated id with a negative weight, and a delivery without an id.
BAD_DELIVERIES = "(4, 'Sevilla', -3.0), (NULL, 'Bilbao', 250.0)"
MAX_WEIGHT_KG = 100


def _values(rows: list[tuple[int, str, float]]) -> str:
    return ", ".join(f"({i}, '{city}', {weight})" for i, city, weight in rows)


with DAG(
    dag_id="carto_common_sql",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"bad_rows": Param(False, type="boolean", description="Load two bad deliveries too.")},
    tags=["carto", "example", "common-sql"],
) as dag:
    load = SQLExecuteQueryOperator(
        task_id="load",
        conn_id=CONN_ID,
        sql=[
            "CREATE SCHEMA IF NOT EXISTS shared",
            f"CREATE OR REPLACE TABLE {TABLE} (delivery_id INT64, city STRING, weight_kg FLOAT64)",
            f"INSERT INTO {TABLE} VALUES {_values(DELIVERIES)}"
            + "{% if params.bad_rows %}, "
            + BAD_DELIVERIES
            + "{% endif %}",
        ],
    )
    # Parameters travel as CARTO queryParameters (@name for the CARTO Data Warehouse).
    heavy = SQLExecuteQueryOperator(
        task_id="heavy_deliveries",
        conn_id=CONN_ID,
        sql=f"SELECT delivery_id, city FROM {TABLE} WHERE weight_kg >= @min_kg ORDER BY delivery_id",
        parameters={"min_kg": 10},
    )
    columns = SQLColumnCheckOperator(
        task_id="check_columns",
        conn_id=CONN_ID,
        table=TABLE,
        column_mapping={
            "delivery_id": {"null_check": {"equal_to": 0}, "unique_check": {"equal_to": 0}},
            "weight_kg": {"min": {"greater_than": 0}},
        },
    )
    table = SQLTableCheckOperator(
        task_id="check_table",
        conn_id=CONN_ID,
        table=TABLE,
        checks={"weights_in_range": {"check_statement": f"weight_kg BETWEEN 0 AND {MAX_WEIGHT_KG}"}},
    )
    count = SQLValueCheckOperator(
        task_id="check_count",
        conn_id=CONN_ID,
        sql=f"SELECT COUNT(*) FROM {TABLE}",
        pass_value=len(DELIVERIES),
    )
    heaviest = SQLThresholdCheckOperator(
        task_id="check_heaviest",
        conn_id=CONN_ID,
        sql=f"SELECT MAX(weight_kg) FROM {TABLE}",
        min_threshold=0,
        max_threshold=MAX_WEIGHT_KG,
    )
    arrived = SqlSensor(
        task_id="wait_for_madrid",
        conn_id=CONN_ID,
        sql=f"SELECT COUNT(*) FROM {TABLE} WHERE city = 'Madrid'",
        poke_interval=1,
        timeout=60,
    )

    @task
    def summarise() -> dict[str, float]:
        """Read the table with the same hook Airflow built for the checks, as a pandas DataFrame."""
        from airflow.providers.common.sql.operators.sql import BaseSQLOperator

        hook = BaseSQLOperator.get_hook(CONN_ID)
        frame = hook.get_df(f"SELECT city, SUM(weight_kg) AS kg FROM {TABLE} GROUP BY city ORDER BY city")
        print(frame.to_string(index=False))
        return {str(city): float(kg) for city, kg in zip(frame["city"], frame["kg"], strict=True)}

    load >> [heavy, columns, table, count, heaviest, arrived]
    [columns, table, count, heaviest, arrived] >> summarise()
