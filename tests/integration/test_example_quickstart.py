"""The quickstart example DAG runs for real (dag.test on SQLite) against the emulator."""

from __future__ import annotations


def test_quickstart_dag_succeeds_with_one_token_request(
    airflow_db, carto_connection, carto_emulator, example_dag
):
    dag = example_dag("carto_quickstart")
    run = dag.test()
    assert str(run.state).lower().endswith("success")
    assert carto_emulator.token_requests() == 1
    assert carto_emulator.events("dw_token") == 1
