"""``make demo``: run example DAGs with real Airflow (SQLite, temporary AIRFLOW_HOME) against the emulator.

Usage: ``python -m carto_provider.testing.demo --dags-folder example_dags [DAG_ID ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from carto_provider.testing.emulator import CartoEmulator

DEFAULT_DAGS = ("carto_quickstart",)


def airflow_env(home: Path, dags_folder: Path, emulator: CartoEmulator) -> dict[str, str]:
    """Environment for an isolated Airflow on SQLite whose ``carto_default`` is the emulator."""
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_CARTO_DEFAULT": emulator.airflow_connection_json(
                token_cache_dir=str(home / "carto-tokens"), bigquery_api_endpoint=emulator.url
            ),
            "CARTO_AUTH_URL": emulator.url,
        }
    )
    return env


def run(cmd: list[str], env: dict[str, str], log: Path) -> int:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        return subprocess.call(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dags-folder", default="example_dags", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME and log")
    parser.add_argument("dag_ids", nargs="*", default=list(DEFAULT_DAGS))
    args = parser.parse_args(argv)
    airflow = str(Path(sys.executable).with_name("airflow"))
    home = Path(tempfile.mkdtemp(prefix="carto-demo-"))
    log = home / "demo.log"
    failures = 0
    with CartoEmulator() as carto:
        env = airflow_env(home, args.dags_folder.resolve(), carto)
        print(f"CARTO emulator on {carto.url}; Airflow home {home} (SQLite)")
        started = time.monotonic()
        if run([airflow, "db", "migrate"], env, log) != 0:
            print(f"airflow db migrate failed; see {log}")
            return 1
        print(f"Airflow database ready in {time.monotonic() - started:.1f} s")
        for dag_id in args.dag_ids:
            before_tokens, before_calls = carto.token_requests(), carto.calls("*")
            started = time.monotonic()
            code = run([airflow, "dags", "test", dag_id], env, log)
            text = log.read_text(errors="replace")
            states = re.findall(r"state[=:]\s*'?(success|failed)", text.rsplit(f"dags test {dag_id}", 1)[-1])
            ok = code == 0 and (not states or states[-1] == "success")
            failures += not ok
            print(
                f"{'OK  ' if ok else 'FAIL'} {dag_id}: {'success' if ok else 'failed'} in "
                f"{time.monotonic() - started:.1f} s; {carto.token_requests() - before_tokens} M2M token "
                f"request(s), {carto.calls('*') - before_calls} CARTO API call(s) in all"
            )
        summary = {k: v for k, v in carto.state.calls.items() if v}
        print("Requests the emulator served: " + json.dumps(dict(sorted(summary.items())))[:600])
    if failures or args.keep:
        print(f"Full Airflow output: {log}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
