"""What every benchmark shares: paths, the run context, task-process environments, tables, statistics."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carto_provider.testing.emulator import CartoEmulator

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"
WORK = BENCH_DIR / ".work"
RESULTS = BENCH_DIR / "RESULTS.md"
#: Simulated round trip of CARTO's token endpoint (the emulator answers in microseconds otherwise).
TOKEN_LATENCY = 0.15
#: The multiplication sign, as in "64 times fewer" written with it in the report.
TIMES = "\u00d7"


class BenchmarkError(RuntimeError):
    """A strategy failed in a way that makes its table meaningless (not a behaviour being measured)."""


@dataclass
class Section:
    """One benchmark's part of RESULTS.md."""

    number: int
    title: str
    method: str
    table: str = ""
    notes: list[str] = field(default_factory=list)
    headline: list[str] = field(default_factory=list)
    environment: str = ""
    skipped: str | None = None

    def markdown(self) -> str:
        """The section as Markdown: method, table, the table's machine/versions/date line, notes."""
        parts = [f"## {self.number}. {self.title}", self.method.strip()]
        if self.skipped:
            parts.append(f"**Not measured:** {self.skipped}")
        if self.table:
            parts.append(self.table)
        if self.environment:
            parts.append(f"<sub>{self.environment}</sub>")
        parts.extend(self.notes)
        return "\n\n".join(parts) + "\n"


@dataclass
class Context:
    """A benchmark run: the emulator, a scratch directory, the credentials file, the run's date."""

    emulator: CartoEmulator
    scratch: Path
    credentials: Path
    started: dt.datetime
    quick: bool = False
    #: Figures one benchmark leaves for a later one (the physical limits table reads the cold bursts').
    figures: dict[str, Any] = field(default_factory=dict)

    def home(self, *parts: str) -> Path:
        """A fresh ``HOME`` for one strategy in one scenario, so caches never mix."""
        path = self.scratch.joinpath("homes", *parts)
        path.mkdir(parents=True, exist_ok=False)
        return path

    def environment(self, **versions: str) -> str:
        """The machine, versions and date line printed under each table."""
        extra = "".join(f", {name} {version}" for name, version in versions.items())
        return (
            f"{self.started:%Y-%m-%d %H:%M} UTC · {machine()} · Python {platform.python_version()} · "
            f"airflow-provider-carto {version_of('airflow-provider-carto')}, "
            f"carto-auth {version_of('carto-auth')}{extra}"
        )


def method_text(doc: str | None, *, drop_last: int = 0) -> str:
    """A module docstring as a report's method paragraphs: without its first (summary) paragraph and
    the last ``drop_last`` ones, reStructuredText literals and roles turned into Markdown code."""
    paragraphs = (doc or "").strip().split("\n\n")[1 : -drop_last or None]
    text = "\n\n".join(paragraphs)
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def version_of(distribution: str) -> str:
    """The installed version of a distribution, or ``not installed``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    """CPU model, core count, memory and kernel, e.g. ``AMD EPYC, 2 cores, 23 GB RAM, Linux 6.1``."""
    model = platform.processor() or platform.machine()
    memory = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model
            )
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            kib = int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal")))
        memory = f", {kib / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{model}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}"


def write_credentials(path: Path, emulator: CartoEmulator) -> Path:
    """A ``carto_credentials.json`` for the emulator's M2M client (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(emulator.credentials(), handle)
    return path


def task_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a benchmark task process: this environment less Airflow/CARTO settings,
    with its own ``HOME`` and ``TZ=UTC`` (carto-auth computes expiry with naive UTC datetimes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CARTO_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a deployment has bytecode: see precompile()
    env.update(HOME=str(home), TZ="UTC", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


#: What the timed token paths import (lazily, some after a burst's start instant): their bytecode is
#: compiled before any timing, as ``pip install`` does, so no process pays Python's compiler.
TOKEN_PATH_PACKAGES = (
    "carto_provider",
    "carto_auth",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "sniffio",
    "certifi",
    "idna",
    "tenacity",
    "filelock",
    "requests",
    "urllib3",
    "charset_normalizer",
    "redis",
    "cryptography",
    "jwt",
)


def precompile(packages: Sequence[str] = TOKEN_PATH_PACKAGES) -> None:
    """Write the bytecode of ``packages`` (those installed), even under ``$PYTHONDONTWRITEBYTECODE``."""
    import compileall
    import importlib.util

    for name in packages:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(location, quiet=2, workers=0)


def python_module(module: str, *args: str, python: str | None = None) -> list[str]:
    """The command running ``python -m module args`` (the harness runs it from the repository root)."""
    return [python or sys.executable, "-m", module, *args]


def json_from_child(
    module: str,
    *args: str,
    home: Path | None,
    what: str,
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> Any:
    """Run ``python -m module args``, as a task process with its own ``home`` (None: in this
    process's environment) and ``env`` added; the JSON it printed last.

    ``what`` names the process in the :class:`BenchmarkError` raised when it fails."""
    environment = None if home is None else task_env(home)
    if env:
        environment = {**(environment or os.environ), **env}
    proc = subprocess.run(
        python_module(module, *args),
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchmarkError(f"the {what} process failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def seconds(value: float) -> str:
    """A duration for a table: ``0.183 s``, ``12.4 s``, or ``-`` when undefined."""
    if math.isnan(value):
        return "-"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def ratio(numerator: float, denominator: float) -> str:
    """``12`` + :data:`TIMES` style ratio text; ``∞`` when only the denominator is 0."""
    if denominator == 0:
        return "∞" if numerator else "-"
    value = numerator / denominator
    return f"{value:,.0f}{TIMES}" if value >= 10 else f"{value:.1f}{TIMES}"


def goal_ratio(ours: float, theirs: float) -> str:
    """``ratio 0.42`` for a "no slower than" goal (two decimals, so 1.00 vs 1.04 shows)."""
    return f"ratio {ours / theirs:.2f}" if theirs else "ratio -"


def replace_block(path: Path, start_marker: str, end_marker: str, body: str) -> bool:
    """Put ``body`` between the first ``start_marker`` and the ``end_marker`` after it in ``path``,
    on the lines between them, keeping both markers and the text around them; False, with the file
    left untouched, when the markers are missing."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start_marker) + ".*?" + re.escape(end_marker), re.S)
    if not pattern.search(text):
        return False
    block = f"{start_marker}\n{body}\n{end_marker}"
    path.write_text(pattern.sub(lambda _: block, text, count=1), encoding="utf-8")
    return True


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)
