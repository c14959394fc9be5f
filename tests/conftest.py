"""Test set-up: an isolated Airflow (SQLite in a temporary AIRFLOW_HOME) and an isolated HOME.

The environment is set before anything imports Airflow. The emulator fixtures (`carto_emulator`,
`carto_connection`) come from the provider's pytest plugin, enabled here as a user enables it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: The example DAGs of the carto_provider being tested (the source tree, or an installed wheel in
#: `make test-lowest`); found without importing it, before Airflow's environment is set.
_PROVIDER = importlib.util.find_spec("carto_provider")
EXAMPLE_DAGS = Path(str(_PROVIDER and _PROVIDER.origin)).parent / "example_dags"
_ROOT = Path(tempfile.mkdtemp(prefix="carto-provider-tests-"))
_AIRFLOW_HOME = _ROOT / "airflow"
_AIRFLOW_HOME.mkdir()
(_ROOT / "home").mkdir()

os.environ.update(
    {
        "HOME": str(_ROOT / "home"),  # nothing may touch the real ~/.carto-auth
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    }
)
os.environ.pop("CARTO_AUTH_URL", None)
os.environ.pop("AIRFLOW_CONN_CARTO_DEFAULT", None)

# Imported after the environment is set: these may import Airflow.
from tests.carto_jobs_support import fast_carto, load_dag, test_dags_bundle  # noqa: E402

pytest_plugins = ["carto_provider.testing.pytest_plugin"]
__all__ = ["fast_carto", "test_dags_bundle"]  # fixtures shared by the SQL/imports/operator tests


def airflow_cli() -> str:
    """The ``airflow`` executable of the interpreter running the tests."""
    return str(Path(sys.executable).with_name("airflow"))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database (once per test session)."""
    subprocess.run([airflow_cli(), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy())
    return _AIRFLOW_HOME


@pytest.fixture
def example_dag():
    """Load a DAG object from ``carto_provider/example_dags/<file>.py`` by dag id."""

    def load(dag_id: str, filename: str | None = None):
        return load_dag(EXAMPLE_DAGS / f"{filename or dag_id}.py", dag_id)

    return load
