"""Fixtures of the cluster scenarios (marker ``cluster``, run by ``make test-cluster``).

One cluster serves the whole session: starting it costs about a minute on 2 cores. Each scenario
leaves it as it found it (emulator settings restored, stopped processes restarted). The figures the
scenarios measure are printed at the end and, with ``CARTO_CLUSTER_RESULTS=<file>`` (``make
bench-cluster``), written into that file's cluster section.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.harness import AirflowCluster

FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="session")
def cluster() -> Iterator[AirflowCluster]:
    """The running cluster (started once; stopped and removed at the end, also after a failure)."""
    started = time.monotonic()
    with AirflowCluster() as running:
        FIGURES["startup_seconds"] = time.monotonic() - started
        yield running


@pytest.fixture
def figures() -> dict[str, Any]:
    """Where a scenario records what it measured (reported at the end of the session)."""
    return FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    from benchmarks.cluster import markdown, write_section

    terminalreporter.write_sep("-", "cluster figures")
    terminalreporter.write_line(markdown(FIGURES))
    terminalreporter.write_line("all figures: " + json.dumps(FIGURES, sort_keys=True, default=str))
    target = os.environ.get("CARTO_CLUSTER_RESULTS")
    if target:
        write_section(Path(target), FIGURES)
        terminalreporter.write_line(f"cluster section written to {target}")
