"""Without the ``emulator`` extra, the emulator commands stop at once and name the extra to install.

A real ``carto-provider`` process in which ``duckdb`` and ``uvicorn`` cannot be imported, as after
``pip install airflow-provider-carto`` without ``[emulator]`` (Airflow 2.11 has no uvicorn either).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from carto_provider.testing.demo import EXAMPLE_DAGS

HIDE_AND_RUN = """
import sys
sys.modules["duckdb"] = None
sys.modules["uvicorn"] = None
from carto_provider.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", [["emulator", "--port", "0"], ["demo"]])
def test_emulator_commands_fail_at_once_naming_the_extra(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", HIDE_AND_RUN, *command], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "pip install 'airflow-provider-carto[emulator]'" in done.stderr
    assert "missing: uvicorn, duckdb" in done.stderr
    assert "listening" not in done.stdout


def test_the_demo_finds_the_examples_installed_with_the_package() -> None:
    from carto_provider.testing.demo import DEFAULT_DAGS

    assert EXAMPLE_DAGS.is_dir()
    for dag_id in DEFAULT_DAGS:
        assert (EXAMPLE_DAGS / f"{dag_id}.py").is_file(), dag_id
    assert (EXAMPLE_DAGS / "sql" / "carto_daily_etl" / "sales_by_store_day.sql").is_file()


HIDE_BIGQUERY = """
import sys
sys.modules["google.cloud.bigquery"] = None
from carto_provider.hooks.carto import CartoAuthHook
try:
    CartoAuthHook(carto_conn_id="carto_default").get_carto_dw_client()
except ImportError as exc:
    print(exc)
"""


def test_the_dw_client_without_the_bigquery_extra_names_it(carto_connection: str) -> None:
    done = subprocess.run([sys.executable, "-c", HIDE_BIGQUERY], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pip install 'airflow-provider-carto[bigquery]'" in done.stdout
