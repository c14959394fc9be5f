"""The API-access-token example DAGs run for real (dag.test on SQLite) against the emulator: an ETL on
an ``api_token`` connection that never calls the token endpoint, and mint-then-geocode."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import json

from carto_provider.testing.lds_data import lds_api
from tests.carto_jobs_support import PROJECT, rows, state_name, task_states, xcom


def test_the_api_token_etl_runs_without_any_token_endpoint_request(
    airflow_db, fast_carto, example_dag, monkeypatch
):
    token = fast_carto.issue_api_token(apis=("sql", "imports", "lds"))
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_API_TOKEN", json.dumps(fast_carto.api_token_connection(token)))
    run = example_dag("carto_api_token_etl").test()
    assert state_name(run.state) == "success", task_states(run)
    assert xcom(run, "summary") == [{"stores": 5, "cities": 5}]
    assert fast_carto.token_endpoint_requests() == 0
    assert fast_carto.events("api_token_use") > 0
    assert lds_api(fast_carto.state).used == 5


def test_mint_then_geocode_geocodes_with_the_minted_token_and_revokes_it(airflow_db, fast_carto, example_dag):
    run = example_dag("carto_lds_token_geocode").test()
    assert state_name(run.state) == "success", task_states(run)
    found = rows(
        fast_carto, f"SELECT id, ST_Y(geom) AS lat FROM `{PROJECT}.shared.stores_to_geocode` ORDER BY id"
    )
    assert [r["lat"] for r in found] == [40.4168, 41.3874, 39.4699, None]
    assert fast_carto.events("api_token_created") == 1 and fast_carto.events("api_token_revoked") == 1
    assert fast_carto.events("at_geocode_table") == 1
    minted = xcom(run, "mint_lds_token")
    assert "token" not in minted and minted["allowed_apis"] == ["lds"]
    assert xcom(run, "geocoded")[0]["latitude"] == 40.4168
