"""Item 4: what a DAG file's imports cost at parse time (``python -X importtime``).

All rows are measured in one separate virtual environment, ``benchmarks/.work/venv-parse`` (Airflow,
the Google provider, this project and carto-auth), so they share every library version. The Google
provider is heavy and is not needed anywhere else, so it never goes into the project's ``.venv``.

Each measurement is a fresh interpreter running ``python -I -X importtime -c`` with the DAG file's own
``from airflow.sdk import DAG`` first, then the imports under test; the cost is the sum of the
``self`` times of the modules imported by the imports under test (what parsing a DAG file pays on
top of Airflow). One unmeasured run compiles the bytecode first.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    REPO,
    WORK,
    BenchmarkError,
    Context,
    Section,
    goal_ratio,
    method_text,
    ratio,
    table,
    version_of,
)

RUNS = 5
VENV = WORK / "venv-parse"
#: Pinned so reruns measure the same code; override with $BENCH_GOOGLE_PROVIDER.
GOOGLE_PROVIDER = "apache-airflow-providers-google==22.8.0"
BASELINE = "from airflow.sdk import DAG"
MARK = "@@bench-import-mark@@"
HEAVY_MODULES = ("google.cloud.bigquery", "duckdb", "fastapi")
INSTALL_TIMEOUT = 900


@dataclass
class ImportCost:
    """Median cost of one set of imports over :data:`RUNS` fresh interpreters."""

    import_ms: float
    wall_ms: float
    modules: int
    heavy: dict[str, bool]


def requirements() -> list[str]:
    airflow = version_of("apache-airflow")
    return [
        f"apache-airflow=={airflow}",
        os.environ.get("BENCH_GOOGLE_PROVIDER", GOOGLE_PROVIDER),
        "-e",
        str(REPO),
        # carto-auth, for its row: a PEP 735 dependency group of pyproject.toml (run with cwd=REPO).
        "--group",
        "bench",
    ]


def ensure_venv() -> tuple[Path, str]:
    """The measuring environment's python, and how it was obtained (built in N s, or reused)."""
    python = VENV / "bin" / "python"
    spec = requirements()
    digest = hashlib.sha256(json.dumps(spec).encode() + (REPO / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / ".bench-stamp"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python, "reused from an earlier run"
    uv = Path(sys.executable).with_name("uv")
    started = time.monotonic()
    shutil.rmtree(VENV, ignore_errors=True)  # stale: built for another pyproject.toml or Google provider
    try:
        subprocess.run(
            [str(uv), "venv", "-q", "--python", sys.executable, str(VENV)], check=True, timeout=120
        )
        subprocess.run(
            [str(uv), "pip", "install", "-q", "--python", str(python), *spec],
            check=True,
            timeout=INSTALL_TIMEOUT,
            cwd=REPO,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        raise BenchmarkError(f"could not build {VENV} with {' '.join(spec)}: {exc}") from exc
    stamp.write_text(digest)
    return python, f"built in {time.monotonic() - started:.0f} s"


def measure_once(python: Path, imports: str, baseline: str) -> ImportCost:
    """One fresh interpreter: cost of ``imports`` after ``baseline``."""
    code = "\n".join(
        [
            "import json, sys, time",
            baseline,
            f"sys.stderr.write({MARK!r} + '\\n'); sys.stderr.flush()",
            "t = time.perf_counter()",
            imports,
            "wall = time.perf_counter() - t",
            f"heavy = {{m: m in sys.modules for m in {HEAVY_MODULES!r}}}",
            "print(json.dumps({'wall': wall, 'heavy': heavy}))",
        ]
    )
    proc = subprocess.run(
        [str(python), "-I", "-X", "importtime", "-c", code],  # -I: nothing from the cwd or $PYTHON*
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        check=False,
    )
    if proc.returncode != 0:
        raise BenchmarkError(f"importing {imports!r} failed: {proc.stderr.strip()[-2000:]}")
    after = proc.stderr.split(MARK, 1)[1]
    selfs = [
        int(line.split("|")[0].split(":")[1])
        for line in after.splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    ]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return ImportCost(sum(selfs) / 1000, out["wall"] * 1000, len(selfs), out["heavy"])


def measure(python: Path, imports: str, baseline: str = BASELINE) -> ImportCost:
    """Median over :data:`RUNS` interpreters, after one that compiles the bytecode."""
    measure_once(python, imports, baseline)
    runs = [measure_once(python, imports, baseline) for _ in range(RUNS)]
    return ImportCost(
        statistics.median(r.import_ms for r in runs),
        statistics.median(r.wall_ms for r in runs),
        int(statistics.median(r.modules for r in runs)),
        runs[-1].heavy,
    )


def provider_modules() -> list[str]:
    """The modules a DAG using this provider imports: the hook, and every operator and sensor module."""
    modules = ["carto_provider.hooks.carto"]
    for package in ("operators", "sensors"):
        for path in sorted((REPO / "carto_provider" / package).glob("*.py")):
            if path.stem != "__init__":
                modules.append(f"carto_provider.{package}.{path.stem}")
    return modules


def import_cost(ctx: Context) -> Section:
    """Build (or reuse) the measuring environment and measure each row."""
    python, how = ensure_venv()
    ours = provider_modules()
    rows_spec = [
        ("The DAG file's own `from airflow.sdk import DAG` (the baseline)", BASELINE, ""),
        (
            f"airflow-provider-carto: {', '.join(f'`{m}`' for m in ours)}",
            "\n".join(f"import {m}" for m in ours),
            BASELINE,
        ),
        (
            "carto-auth 0.2.0: `from carto_auth import CartoAuth`",
            "from carto_auth import CartoAuth",
            BASELINE,
        ),
        (
            "Google provider: `from airflow.providers.google.cloud.operators.bigquery import "
            "BigQueryInsertJobOperator`",
            "from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator",
            BASELINE,
        ),
    ]
    costs = [measure(python, imports, baseline) for _, imports, baseline in rows_spec]

    def yes(flag: bool) -> str:
        return "**yes**" if flag else "no"

    rows = [
        (
            label,
            f"{c.import_ms:.0f} ms",
            f"{c.wall_ms:.0f} ms",
            c.modules,
            yes(c.heavy["google.cloud.bigquery"]),
            yes(c.heavy["duckdb"] or c.heavy["fastapi"]),
        )
        for (label, _, _), c in zip(rows_spec, costs, strict=True)
    ]
    provider, seed, google = costs[1], costs[2], costs[3]
    if provider.heavy["google.cloud.bigquery"] or provider.heavy["duckdb"] or provider.heavy["fastapi"]:
        raise BenchmarkError(
            "importing the provider's hook/operators imported google.cloud.bigquery, duckdb or fastapi"
        )
    google_version = version_of("apache-airflow-providers-google")
    installed = (
        subprocess.run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m; print(m.version('apache-airflow-providers-google'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or google_version
    )
    missing = (
        [] if len(ours) > 1 else ["no operator or sensor modules exist yet: the row covers the hook only"]
    )
    return Section(
        4,
        "Parse-time cost: what a DAG file's imports cost",
        method_text(__doc__)
        + f" Median of {RUNS} runs; the environment was {how}. *Import time* is the `-X importtime` sum; "
        "*wall* is the clock around the import statements (with `-X importtime`'s own overhead).",
        table(
            [
                "Imports",
                "Import time",
                "Wall",
                "Modules imported",
                "google.cloud.bigquery",
                "duckdb / fastapi",
            ],
            rows,
        ),
        notes=missing,
        environment=ctx.environment(
            **{"apache-airflow": version_of("apache-airflow"), "Google provider": installed}
        ),
        headline=[
            "Parsing a DAG file that imports this provider's hook, operators and sensors costs "
            f"**{provider.import_ms:.0f} ms** of imports on top of `from airflow.sdk import DAG` vs "
            f"{seed.import_ms:.0f} ms for `from carto_auth import CartoAuth` "
            f"(**{goal_ratio(provider.import_ms, seed.import_ms)}**, goal ≤ 1.0), without importing "
            "`google.cloud.bigquery`; the Google provider's BigQuery operators cost "
            f"{google.import_ms:.0f} ms ({ratio(google.import_ms, provider.import_ms)} ours).",
        ],
    )
