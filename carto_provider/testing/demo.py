"""Run example DAGs with real Airflow (SQLite, temporary AIRFLOW_HOME) against the emulator.

This is what ``make demo`` and ``carto-provider demo [DAG_ID ...]`` do; by default with the example DAGs
installed with the package, so it works from any directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from carto_provider.testing.emulator import CartoEmulator

#: The example DAGs shipped in the wheel (``carto_provider/example_dags``).
EXAMPLE_DAGS = Path(__file__).resolve().parent.parent / "example_dags"
DEFAULT_DAGS = (
    "carto_quickstart",
    "carto_daily_etl",
    "carto_dw_etl",
    "carto_common_sql",
    "carto_api_token_etl",
    "carto_lds_token_geocode",
)


def airflow_env(home: Path, dags_folder: Path, emulator: CartoEmulator) -> dict[str, str]:
    """Environment for an isolated Airflow on SQLite whose ``carto_default`` is the emulator (an M2M
    client) and ``carto_api_token`` an API access token the emulator issued (sql, imports, lds)."""
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
                cache_dir=str(home / "carto-tokens"), bigquery_api_endpoint=emulator.url
            ),
            "AIRFLOW_CONN_CARTO_API_TOKEN": json.dumps(
                emulator.api_token_connection(emulator.issue_api_token(apis=("sql", "imports", "lds")))
            ),
            "CARTO_AUTH_URL": emulator.url,
        }
    )
    return env


@dataclass(frozen=True)
class DagRunReport:
    """How one ``airflow dags test`` went, and what it cost on the emulator."""

    dag_id: str
    ok: bool
    seconds: float
    token_requests: int
    api_calls: int
    token_endpoint_requests: int = 0


@dataclass
class DemoReport:
    """Everything a demo run did; ``log`` holds Airflow's full output."""

    airflow_home: Path
    log: Path
    runs: list[DagRunReport] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    migrate_failed: bool = False

    @property
    def ok(self) -> bool:
        return not self.migrate_failed and all(run.ok for run in self.runs)


def _run_logged(cmd: list[str], env: dict[str, str], log: Path) -> int:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        return subprocess.call(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def run_demo(
    dags_folder: Path,
    dag_ids: Sequence[str] = DEFAULT_DAGS,
    *,
    on_progress: Callable[[str], None] = lambda message: None,
) -> DemoReport:
    """Start an emulator and a throw-away Airflow, run ``airflow dags test`` for each DAG id."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    home = Path(tempfile.mkdtemp(prefix="carto-demo-"))
    report = DemoReport(airflow_home=home, log=home / "demo.log")
    with CartoEmulator() as carto:
        env = airflow_env(home, dags_folder.resolve(), carto)
        on_progress(f"CARTO emulator on {carto.url}; Airflow home {home} (SQLite)")
        started = time.monotonic()
        if _run_logged([airflow, "db", "migrate"], env, report.log) != 0:
            report.migrate_failed = True
            return report
        on_progress(f"Airflow database ready in {time.monotonic() - started:.1f} s")
        for dag_id in dag_ids:
            before_tokens, before_calls = carto.token_requests(), carto.calls("*")
            before_endpoint = carto.token_endpoint_requests()
            started = time.monotonic()
            code = _run_logged([airflow, "dags", "test", dag_id], env, report.log)
            output = report.log.read_text(errors="replace").rsplit(f"dags test {dag_id}", 1)[-1]
            states = re.findall(r"state[=:]\s*'?(success|failed)", output)
            run = DagRunReport(
                dag_id=dag_id,
                ok=code == 0 and (not states or states[-1] == "success"),
                seconds=time.monotonic() - started,
                token_requests=carto.token_requests() - before_tokens,
                api_calls=carto.calls("*") - before_calls,
                token_endpoint_requests=carto.token_endpoint_requests() - before_endpoint,
            )
            report.runs.append(run)
            on_progress(
                f"{'OK  ' if run.ok else 'FAIL'} {dag_id}: {'success' if run.ok else 'failed'} in "
                f"{run.seconds:.1f} s; {run.token_requests} M2M token(s) issued, "
                f"{run.token_endpoint_requests} token endpoint request(s), "
                f"{run.api_calls} CARTO API call(s) in all"
            )
        with carto.state.lock:
            # A token in a path (DELETE /v3/tokens/{token}) is not shown.
            shown = [
                (re.sub(r"^(\S+ /v3/tokens/).+", r"\1***", k), v) for k, v in carto.state.calls.items() if v
            ]
            report.requests = dict(sorted(shown))
    return report
