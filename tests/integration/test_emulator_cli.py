"""``carto-provider emulator`` prints a connection that has every extra the Data Warehouse client needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import emulator_cli_connection

SCRIPT = """
from carto_provider.hooks.carto import CartoAuthHook
client = CartoAuthHook().get_carto_dw_client()
print(client.project, list(client.query("SELECT 40 + 2 AS answer").result())[0]["answer"])
"""


def test_the_printed_connection_reaches_the_emulators_bigquery(tmp_path: Path) -> None:
    with emulator_cli_connection() as conn:
        assert conn["extra"]["bigquery_api_endpoint"] == conn["host"]
        conn["extra"]["cache_dir"] = str(tmp_path)
        env = {**os.environ, "AIRFLOW_CONN_CARTO_DEFAULT": json.dumps(conn)}
        # Without the endpoint the client would go to Google and retry for minutes: the timeout says so.
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=90
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().splitlines()[-1] == "carto-dw-ac-emulator 42"
