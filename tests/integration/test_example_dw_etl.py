"""The CARTO DW ETL example DAG runs for real (dag.test on SQLite) against the emulator's Data Warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

from carto_provider.testing.emulator import CartoEmulator
from carto_provider.testing.warehouse import get_warehouse
from tests.conftest import EXAMPLE_DAGS


@pytest.fixture
def dw_connection(carto_emulator: CartoEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """``carto_default`` pointing at the emulator for both the CARTO API and BigQuery."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_CARTO_DEFAULT",
        carto_emulator.airflow_connection_json(
            cache_dir=str(tmp_path / "tokens"), bigquery_api_endpoint=carto_emulator.url
        ),
    )
    return "carto_default"


def test_carto_dw_etl_dag_succeeds(airflow_db, dw_connection, carto_emulator, example_dag) -> None:
    dag = example_dag("carto_dw_etl")
    run = dag.test()
    assert str(run.state).lower().endswith("success")

    states = {ti.task_id: str(ti.state).lower() for ti in run.get_task_instances()}
    assert states == dict.fromkeys(["create_table", "load_rows", "aggregate", "check"], "success")
    # The rows really are in the Data Warehouse, and the aggregation ran there.
    table = get_warehouse(carto_emulator.state).read_rows("shared", "airflow_example_stores")
    assert len(table.rows) == 6
    assert carto_emulator.calls("POST /upload/bigquery/v2/projects/*/jobs") == 1
    assert carto_emulator.calls("POST /bigquery/v2/projects/*/jobs") == 1
    # One CARTO token for the whole run (shared cache); one DW token per task that built a client.
    assert carto_emulator.token_requests() == 1
    assert carto_emulator.events("dw_token") == 3
    assert carto_emulator.events("bigquery_unauthorized") == 0


def test_check_task_catches_a_wrong_aggregation() -> None:
    import importlib.util

    path = EXAMPLE_DAGS / "carto_dw_etl.py"
    spec = importlib.util.spec_from_file_location("carto_dw_etl_module", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = [
        {"city": city, **values, "centroid": "POINT(0 0)"}
        for city, values in module.expected_summary().items()
    ]
    check = module.dag.get_task("check").python_callable
    check(summary)  # the right numbers pass
    summary[0]["stores"] += 1
    with pytest.raises(ValueError, match="aggregation is wrong"):
        check(summary)
