"""Item 6: token requests per simulated day for a fleet of W workers running T tasks each per day.

Real task processes, real caches, a real ``redis-server``, the emulator's real token endpoint; only
the calendar is simulated (:mod:`benchmarks.simclock`): every 24/T hours of a simulated day, a batch
of tasks starts, one per worker and deployment, all at that instant; between batches the clock jumps
ahead. The emulator runs in the simulation's own process on the same clock, so its tokens
(``expires_in`` 86,400 s, JWT ``exp``) expire on the simulated calendar, and each cache's refresh
windows (from 30 minutes before expiry) play out as in production, in about a minute.

Four deployments run side by side, each with its own M2M client so the emulator counts them apart:

* long-lived workers (Celery, LocalExecutor): each worker has one ``HOME`` its tasks share;
* the same with the Redis token cache (:mod:`carto_provider.auth.cache.redis`) in front;
* a pod per task (KubernetesExecutor): every task starts with an empty ``HOME``;
* a pod per task with the Redis token cache.

``python -m benchmarks.fleet [W T DAYS]`` runs the simulation alone and prints its table
(``--json``: the raw counts, as the harness reads them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import simclock
from benchmarks.common import (
    REPO,
    TIMES,
    TOKEN_LATENCY,
    BenchmarkError,
    Context,
    Section,
    json_from_child,
    method_text,
    python_module,
    ratio,
    table,
    task_env,
    version_of,
)

WORKERS, TASKS, DAYS = 4, 6, 2
MODEL_WORKERS, MODEL_TASKS = 20, 500
DAY = 86400.0
SIM_TIMEOUT = 900


@dataclass(frozen=True)
class Deployment:
    """One way of running tasks: does a worker keep its cache, is there a Redis cache, how counts scale."""

    label: str
    per_worker_home: bool
    redis: bool
    scales_with: str  # "task", "worker" or "fleet"


DEPLOYMENTS = {
    "workers_file": Deployment("Long-lived workers, file cache (default)", True, False, "worker"),
    "workers_redis": Deployment("Long-lived workers, Redis token cache", True, True, "fleet"),
    "pods_file": Deployment("Pod per task, file cache", False, False, "task"),
    "pods_redis": Deployment("Pod per task, Redis token cache", False, True, "fleet"),
}


def run_batch(
    scratch: Path, credentials: dict[str, Path], redis_url: str, workers: int, label: str
) -> list[str]:
    """Start one task per worker and deployment now (simulated), wait for all; return failures."""
    procs = []
    for name, deployment in DEPLOYMENTS.items():
        for worker in range(workers):
            home = (
                scratch
                / name
                / (f"worker-{worker}" if deployment.per_worker_home else f"pod-{label}-{worker}")
            )
            home.mkdir(parents=True, exist_ok=True)
            procs.append(
                subprocess.Popen(
                    python_module(
                        "benchmarks.fleet_task",
                        "redis" if deployment.redis else "file",
                        str(credentials[name]),
                        redis_url,
                    ),
                    cwd=REPO,
                    env=task_env(home, **{simclock.ENV: simclock.env_value()}),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
    failures = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        lines = out.strip().splitlines()
        if proc.returncode != 0 or not lines:
            failures.append(f"exit {proc.returncode}: {err.strip()[-500:]}")
        elif not json.loads(lines[-1])["ok"]:
            failures.append(json.loads(lines[-1])["error"])
    return failures


def simulate(workers: int, tasks: int, days: int) -> dict[str, Any]:
    """Run every deployment's tasks on the simulated calendar; count token requests per day."""
    from carto_provider.testing.redis_server import RedisServer

    started = time.monotonic()
    midnight = (simclock.real_time() // DAY + 1) * DAY  # day 1 starts at the next UTC midnight
    simclock.set_now(midnight)
    from carto_provider.testing.emulator import CartoEmulator

    per_day: dict[str, list[int]] = {name: [] for name in DEPLOYMENTS}
    failures: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="carto-bench-fleet-") as tmp,
        CartoEmulator() as emulator,
        RedisServer() as redis,
    ):
        scratch = Path(tmp)
        emulator.set_latency("POST /oauth/token", TOKEN_LATENCY)
        credentials = {}
        for name in DEPLOYMENTS:
            client_id, secret = f"fleet-{name}", f"fleet-secret-{name}-0123456789"
            emulator.add_client(client_id, secret)
            path = scratch / f"{name}.json"
            path.write_text(json.dumps(emulator.credentials(client_id=client_id, client_secret=secret)))
            path.chmod(0o600)
            credentials[name] = path
        for day in range(days):
            for slot in range(tasks):
                simclock.set_now(midnight + day * DAY + slot * DAY / tasks + 60)
                failures += run_batch(scratch, credentials, redis.url, workers, f"{day}-{slot}")
            for name in DEPLOYMENTS:
                per_day[name].append(emulator.token_requests(f"fleet-{name}") - sum(per_day[name]))
    return {"per_day": per_day, "failures": failures, "real_seconds": time.monotonic() - started}


def model(deployment: Deployment, day_count: int, workers: int, tasks: int) -> float:
    """Requests per day for :data:`MODEL_WORKERS` x :data:`MODEL_TASKS`, scaled from the measured day."""
    if deployment.scales_with == "task":
        return day_count / (workers * tasks) * MODEL_WORKERS * MODEL_TASKS
    if deployment.scales_with == "worker":
        return day_count / workers * MODEL_WORKERS
    return float(day_count)


def redis_server_version() -> str:
    """``7.0.15``-style version of the ``redis-server`` on PATH."""
    try:
        out = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return "missing"
    return next((w[2:] for w in out.split() if w.startswith("v=")), out.strip() or "unknown")


def section(result: dict[str, Any], workers: int, tasks: int, environment: str = "") -> Section:
    """The report of a simulation's result."""
    if result["failures"]:
        raise BenchmarkError(f"{len(result['failures'])} fleet task(s) failed, e.g. {result['failures'][0]}")
    per_day = result["per_day"]
    days = len(next(iter(per_day.values())))
    rows, models = [], {}
    for name, deployment in DEPLOYMENTS.items():
        counts = per_day[name]
        models[name] = model(deployment, counts[-1], workers, tasks)
        rows.append((deployment.label, *counts, f"{counts[-1] / workers:.2f}", f"{models[name]:,.0f}"))
    day_headers = [f"Day {d + 1}{' (cold)' if d == 0 else ''}" for d in range(days)]
    pods, workers_file, redis = models["pods_file"], models["workers_file"], models["workers_redis"]
    return Section(
        6,
        f"Fleet: token requests per simulated day, {workers} workers {TIMES} {tasks} tasks a day each",
        method_text(__doc__, drop_last=1)
        + f"\n\nCounts are read at each simulated midnight. {workers * tasks} tasks a day per deployment, "
        f"{days} simulated days in {result['real_seconds']:.0f} real seconds. The last column scales the "
        f"last day to {MODEL_WORKERS} workers {TIMES} {MODEL_TASKS} tasks a day by what makes each "
        "deployment fetch: every task (pod per task, file cache), every worker (file cache) or the "
        "fleet (Redis).",
        table(
            [
                "Deployment",
                *day_headers,
                "Per worker per day (last day)",
                f"Model: {MODEL_WORKERS} {TIMES} {MODEL_TASKS}",
            ],
            rows,
        ),
        notes=[
            "carto-auth is not simulated here: its expiry check uses `datetime.utcnow()`, which the "
            "simulated clock does not reach. It has no fleet-wide cache, so at best it matches the "
            "file-cache rows (one token per worker per day, one per task in pods), and its warm-cache "
            "crashes (item 2) come on top when tasks overlap.",
        ],
        environment=environment,
        headline=[
            f"Fleet model, {MODEL_WORKERS} workers {TIMES} {MODEL_TASKS} tasks a day: **{pods:,.0f}** "
            "token requests a day with a pod per task and no shared cache, "
            f"**{workers_file:,.0f}** with long-lived workers and the file cache, **{redis:,.0f}** with "
            f"the Redis token cache ({ratio(pods, redis)} fewer than pod per task).",
        ],
    )


def fleet(ctx: Context) -> Section:
    """Run the simulation in its own process (its clock is simulated) and report."""
    workers, tasks, days = (2, 4, 2) if ctx.quick else (WORKERS, TASKS, DAYS)
    args = (str(workers), str(tasks), str(days), "--json")
    result = json_from_child(
        "benchmarks.fleet", *args, home=None, what="fleet simulation", timeout=SIM_TIMEOUT
    )
    versions = {"redis-server": redis_server_version(), "redis-py": version_of("redis")}
    return section(result, workers, tasks, ctx.environment(**versions))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("workers", type=int, nargs="?", default=WORKERS)
    parser.add_argument("tasks", type=int, nargs="?", default=TASKS)
    parser.add_argument("days", type=int, nargs="?", default=DAYS)
    parser.add_argument("--json", action="store_true", help="print the raw counts as one JSON line")
    args = parser.parse_args(argv)
    result = simulate(args.workers, args.tasks, args.days)
    if args.json:
        print(json.dumps(result), flush=True)
        return 0
    print(section(result, args.workers, args.tasks).table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
