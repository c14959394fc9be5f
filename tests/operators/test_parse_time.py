"""What a DAG file pays for importing this provider's operators and sensors (issue 12, item 7).

Only what an operator's constructor needs is imported at parse time; the trigger machinery, locks,
Redis and BigQuery load when a task first needs them. ``benchmarks/importcost.py`` measures the cost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks.importcost import provider_modules

#: Loaded on first use, never by parsing a DAG file.
FIRST_USE_ONLY = (
    "airflow.triggers.base",
    "carto_provider.triggers.base",
    "filelock",
    "redis",
    "google.cloud.bigquery",
    "google.auth.transport.requests",
    "duckdb",
    "fastapi",
)


def test_parsing_a_dag_file_loads_no_first_use_machinery(tmp_path):
    """On top of what the DAG file's own ``DAG`` import loads (Airflow 2 loads triggers itself)."""
    code = "\n".join(
        [
            "import json, sys",
            "try:\n    from airflow.sdk import DAG\nexcept ImportError:\n    from airflow import DAG",
            "before = set(sys.modules)",
            *(f"import {m}" for m in provider_modules()),  # what benchmarks/importcost.py times
            f"print(json.dumps([m for m in {FIRST_USE_ONLY!r} if m in set(sys.modules) - before]))",
        ]
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert list(tmp_path.iterdir()) == []  # and no file was created
