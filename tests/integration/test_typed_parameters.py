"""Jinja-rendered ``query_parameters`` keep their types with native rendering (the documented way);
with text rendering every value is a string."""

from __future__ import annotations

import datetime as dt

from tests.carto_jobs_support import TEST_DAGS, load_dag, run_dag, state_name, task_states, xcom

DAY = dt.date(2024, 1, 3)


def run(name: str):
    return run_dag(load_dag(TEST_DAGS / "carto_typed_parameters_dags.py", name), DAY)


def test_native_rendering_sends_numbers_and_booleans(airflow_db, fast_carto, test_dags_bundle):
    dag_run = run("carto_typed_parameters_native")
    assert state_name(dag_run.state) == "success", task_states(dag_run)
    assert xcom(dag_run, "typed") == [
        {"next_n": 42, "double_ratio": 0.5, "not_flag": False, "day": "2024-01-03"}
    ]


def test_text_rendering_sends_strings(airflow_db, fast_carto, test_dags_bundle):
    dag_run = run("carto_typed_parameters_text")
    # '41' + 1 is not INT64 arithmetic: the warehouse refuses the STRING parameter.
    assert state_name(dag_run.state) == "failed"
