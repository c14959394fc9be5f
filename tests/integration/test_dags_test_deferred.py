"""``airflow dags test`` of deferrable CARTO tasks with a connection added by ``airflow connections add``
(stored in the database): Airflow 3.3.2's in-process triggerer has no async connection lookup, so the
async hook falls back to a synchronous lookup in a worker thread instead of "conn_id isn't defined"."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_DAGS, airflow_cli

AIRFLOW_3 = __import__("airflow").__version__.startswith("3")


@pytest.mark.skipif(not AIRFLOW_3, reason="Airflow 2's dags test runs triggers with the sync lookup")
def test_dags_test_defers_with_a_database_connection(fast_carto, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(EXAMPLE_DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="true",
        AIRFLOW__CARTO__POLL_INTERVAL="0.2",
    )

    def airflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([airflow_cli(), *args], env=env, capture_output=True, text=True, timeout=300)

    assert airflow("db", "migrate").returncode == 0
    conn = fast_carto.airflow_connection(cache_dir=str(tmp_path / "tokens"))
    added = airflow("connections", "add", "carto_default", "--conn-json", json.dumps(conn))
    assert added.returncode == 0, added.stderr[-2000:]
    done = airflow("dags", "test", "carto_lineage")
    out = done.stdout + done.stderr
    assert "isn't defined" not in out
    assert done.returncode == 0, out[-3000:]
    assert "new_state=deferred" in out  # the CARTO tasks really deferred
    assert "state=success, run_type=manual" in out
