"""Helpers shared by the tests: credentials files and bursts of worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("token_worker.py")


@contextmanager
def emulator_cli_connection() -> Iterator[dict[str, Any]]:
    """Run ``carto-provider emulator`` as a user would and yield the connection it prints (as JSON)."""
    cli = str(Path(sys.executable).with_name("carto-provider"))
    proc = subprocess.Popen([cli, "emulator", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        line = next(line for line in lines if line.startswith("export AIRFLOW_CONN_CARTO_DEFAULT="))
        yield json.loads(line.split("=", 1)[1].strip().strip("'"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def write_credentials(path: Path, emulator: Any, **overrides: str) -> Path:
    """A carto_credentials.json for the emulator's default client."""
    path.write_text(json.dumps(emulator.credentials(**overrides)))
    return path


def run_burst(
    n: int,
    credentials: Path,
    cache: Path,
    *,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Start ``n`` worker processes that ask for a token at the same instant; return their JSON lines."""
    start_at = time.time() + 2.0 + n * 0.06  # long enough for every process to import first
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(credentials), str(cache), repr(start_at), *extra_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        for _ in range(n)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results
