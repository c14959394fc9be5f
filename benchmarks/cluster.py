"""The native Celery cluster's figures (``make bench-cluster``): a section of ``benchmarks/RESULTS.md``.

The figures are measured by the cluster scenarios (``tests/cluster``, ``make test-cluster``), which
print them; ``make bench-cluster`` runs the same scenarios with ``CARTO_CLUSTER_RESULTS`` set, and the
section below is written between its markers (``make bench`` keeps it when it rewrites the file).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path
from typing import Any

START = "<!-- cluster-figures:start -->"
END = "<!-- cluster-figures:end -->"
SECTION = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)


def _get(figures: dict[str, Any], name: str, spec: str = ".1f") -> str:
    value = figures.get(name)
    return "n/a" if value is None else format(value, spec)


def markdown(figures: dict[str, Any]) -> str:
    """The section, from what the scenarios recorded (a figure a scenario did not reach shows n/a)."""
    task_runs = figures.get("fleet_task_runs")
    tokens = figures.get("fleet_token_requests")
    per_100 = None if not task_runs or tokens is None else tokens / task_runs * 100
    deferrable, polling = figures.get("etl_deferrable_slot_seconds"), figures.get("etl_polling_slot_seconds")
    ratio = f"{polling / deferrable:.1f}x" if deferrable and polling else "n/a"
    lines = [
        "## Cluster: Airflow 3.3 on Celery (`make bench-cluster`)",
        "",
        "A real cluster on this machine, configured like `docker-compose.yml` (`deploy/airflow.env`): "
        "PostgreSQL, Redis, api-server, scheduler, dag-processor, triggerer and two Celery workers "
        "(concurrency 4, each its own HOME), against the CARTO emulator. Measured by the scenarios in "
        "`tests/cluster` (`make test-cluster` runs the same and prints these).",
        "",
        "| Figure | Value |",
        "|---|---|",
        f"| Cluster start (Postgres, Redis, migrations, 6 Airflow processes, DAGs parsed) | "
        f"{_get(figures, 'startup_seconds', '.0f')} s |",
        "| `carto_daily_etl`, one run end to end through the REST API (deferrable / polling) | "
        f"{_get(figures, 'daily_etl_seconds')} s / {_get(figures, 'etl_polling_wall')} s |",
        f"| DAG runs per minute end to end ({figures.get('fleet_runs', 'n/a')} concurrent runs of a "
        f"2-task DAG) | {_get(figures, 'fleet_runs_per_minute')} |",
        "| CARTO token requests per 100 task runs (Redis token cache, cold start) | "
        f"{_get({'v': per_100}, 'v', '.1f')} |",
        f"| Worker-slot seconds, `carto_daily_etl` deferrable ({_get(figures, 'etl_job_seconds', '.0f')} s "
        f"CARTO jobs) | {_get(figures, 'etl_deferrable_slot_seconds')} s |",
        f"| Worker-slot seconds, same run polling | {_get(figures, 'etl_polling_slot_seconds')} s "
        f"({ratio} the deferrable run) |",
        "",
        f"<sub>{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC · {platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[1]:.1f} over the last 5 min at the end "
        f"(a shared machine is slower) · Python {platform.python_version()}</sub>",
    ]
    return "\n".join(lines)


def write_section(path: Path, figures: dict[str, Any]) -> None:
    """Put the section into ``path`` between the markers (replacing it, or appending it)."""
    block = f"{START}\n{markdown(figures)}\n{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if SECTION.search(text):
        text = SECTION.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def carry_over(previous: str, report: str) -> str:
    """``report`` with the cluster section of ``previous`` (a RESULTS.md being rewritten) kept."""
    found = SECTION.search(previous)
    return report if found is None else report.rstrip("\n") + "\n\n" + found.group(0) + "\n"
