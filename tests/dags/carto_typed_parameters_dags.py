"""Test DAGs: query_parameters rendered by Jinja keep their types with native rendering (eco, issue 13)."""

from __future__ import annotations

import pendulum

from carto_provider.operators.sql import CartoQueryOperator

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow.models import DAG  # type: ignore[no-redef,assignment]

SQL = "SELECT @n + 1 AS next_n, @ratio * 2 AS double_ratio, NOT @flag AS not_flag, @day AS day"
PARAMETERS = {
    "n": "{{ params.n }}",
    "ratio": "{{ params.ratio }}",
    "flag": "{{ params.flag }}",
    "day": "{{ ds }}",
}
PARAMS = {"n": 41, "ratio": 0.25, "flag": True}

for native in (True, False):
    with DAG(
        dag_id=f"carto_typed_parameters_{'native' if native else 'text'}",
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        params=PARAMS,
        render_template_as_native_obj=native,
    ) as dag:
        CartoQueryOperator(task_id="typed", sql=SQL, query_parameters=PARAMETERS)
    globals()[dag.dag_id] = dag
