"""The benchmark harness measures what its tables say (no timing is asserted: benchmarks are not tests).

Runs small real bursts against the emulator; the carto-auth parts need the ``bench`` extra.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import fleet, importcost
from benchmarks.bursts import run_burst
from benchmarks.common import REPO, Context, percentile, write_credentials
from benchmarks.libs import CARTO_AUTH, PROVIDER
from benchmarks.token_child import CacheWriteCounter


@pytest.fixture
def bench_context(carto_emulator, tmp_path: Path) -> Context:
    carto_emulator.set_latency("POST /oauth/token", 0.1)
    credentials = write_credentials(tmp_path / "carto_credentials.json", carto_emulator)
    return Context(carto_emulator, tmp_path, credentials, dt.datetime.now(dt.timezone.utc))


def test_provider_burst_counts_one_request_and_no_rewrite_when_warm(bench_context: Context) -> None:
    home = bench_context.home("cold", PROVIDER)
    cold = run_burst(bench_context, PROVIDER, home, 4)
    assert (cold.token_requests, cold.failed, len(cold.times)) == (1, 0, 4)
    assert cold.cache_writes == 1  # the one process that fetched wrote the file once
    warm = run_burst(bench_context, PROVIDER, home, 4)
    assert (warm.token_requests, warm.failed, warm.cache_writes, warm.file_changed) == (0, 0, 0, False)


def test_carto_auth_is_redirected_to_the_emulator_and_rewrites_its_cache(bench_context: Context) -> None:
    pytest.importorskip("carto_auth", reason="carto-auth comes with the bench extra (make bench)")
    home = bench_context.home("warm", CARTO_AUTH)
    first = run_burst(bench_context, CARTO_AUTH, home, 1)
    assert (first.token_requests, first.failed) == (1, 0)
    assert bench_context.emulator.token_requests() == 1  # it reached the emulator, not auth.carto.com
    again = run_burst(bench_context, CARTO_AUTH, home, 1)
    assert (again.token_requests, again.cache_writes, again.file_changed) == (0, 1, True)


def test_write_counter_counts_writes_and_replacements_of_one_file_only(tmp_path: Path) -> None:
    target, other = tmp_path / "token.json", tmp_path / "other.json"
    counter = CacheWriteCounter(target)
    counter.enabled = True
    target.write_text("{}")  # open(..., "w")
    target.read_text()
    other.write_text("{}")
    os.replace(other, target)
    fd = os.open(target, os.O_RDONLY)
    os.close(fd)
    counter.enabled = False
    target.write_text("{}")
    assert counter.count == 2


def test_simulated_clock_starts_a_child_process_at_the_simulated_instant() -> None:
    simulated = 2_000_000_000.0
    env = {**os.environ, "BENCH_SIMCLOCK": f"{simulated!r},{time.time()!r}"}
    code = "import time; from benchmarks import simclock; simclock.install_from_env(); print(time.time())"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert simulated <= float(out.stdout) < simulated + 60


def test_import_cost_counts_only_the_imports_after_the_baseline() -> None:
    cost = importcost.measure_once(Path(sys.executable), "import csv", "import json")
    assert cost.modules >= 1
    assert cost.heavy == {m: False for m in importcost.HEAVY_MODULES}
    assert importcost.measure_once(Path(sys.executable), "import json", "import json").modules == 0


def test_fleet_model_scales_each_deployment_by_what_makes_it_fetch() -> None:
    pods, workers, redis = (fleet.DEPLOYMENTS[k] for k in ("pods_file", "workers_file", "workers_redis"))
    assert fleet.model(pods, 32, 4, 8) == fleet.MODEL_WORKERS * fleet.MODEL_TASKS
    assert fleet.model(workers, 4, 4, 8) == fleet.MODEL_WORKERS
    assert fleet.model(redis, 1, 4, 8) == 1


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert math.isnan(percentile([], 50))
