"""One triggerer's event loop following N CARTO SQL jobs, as Airflow's triggerer runs triggers.

``python -m benchmarks.triggerer_child MODE URL N POLL_INTERVAL``: it starts N SQL jobs (through a
plain httpx client, before the measurement), then follows them. ``MODE`` is ``provider``
(N ``CartoJobTrigger.run()`` generators, the connection ``carto_default`` from
``AIRFLOW_CONN_CARTO_DEFAULT``) or ``baseline`` (the same polls, on the same schedule, through one
shared ``httpx.AsyncClient`` limited to 100 connections, with one token fetched up front). Prints one
JSON line: peak RSS, the longest event-loop stall (a ticker task that wakes every 10 ms), CPU
seconds, TCP connections to the emulator (opened, most open at once: ``/proc/net/tcp`` sampled every
20 ms from a thread), the latest first poll and the wall time.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading
import time
from typing import Any

TICK = 0.01
SAMPLE = 0.02
MAX_CONNECTIONS = 100


def rss_peak_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Sockets(threading.Thread):
    """Samples this process's TCP connections to ``port`` (client side) from ``/proc/net/tcp``."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.remote = f":{port:04X}"
        self.seen: set[str] = set()
        self.most = 0
        self.stop = threading.Event()

    def sample(self) -> None:
        open_now = 0
        with open("/proc/net/tcp", encoding="ascii") as table:
            next(table)
            for line in table:
                fields = line.split()
                if fields[2].endswith(self.remote) and fields[3] == "01":  # ESTABLISHED, to the emulator
                    open_now += 1
                    self.seen.add(fields[1])
        self.most = max(self.most, open_now)

    def run(self) -> None:
        while not self.stop.wait(SAMPLE):
            self.sample()


class GcPauses:
    """The longest pause of each garbage-collector generation (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.longest = [0.0, 0.0, 0.0]
        #: Every full (generation 2) collection: seconds since the start, and how long it took.
        self.full: list[tuple[float, float]] = []
        self._began = 0.0
        self._origin = time.perf_counter()
        gc.callbacks.append(self.callback)

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            generation, took = info["generation"], time.perf_counter() - self._began
            self.longest[generation] = max(self.longest[generation], took)
            if generation == 2:
                self.full.append((round(self._began - self._origin, 2), round(took, 3)))


async def ticker(stalls: list[tuple[float, float]], done: asyncio.Event, started: float) -> None:
    while not done.is_set():
        before = time.monotonic()
        await asyncio.sleep(TICK)
        stalls.append((time.monotonic() - before - TICK, before - started))


def token(client: Any, url: str) -> str:
    conn = json.loads(os.environ["AIRFLOW_CONN_CARTO_DEFAULT"])
    answer = client.post(
        conn["extra"].get("auth_url", url) + "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": conn["login"],
            "client_secret": conn["password"],
            "audience": "carto-cloud-native-api",
        },
    )
    return str(answer.json()["access_token"])


def submit(url: str, n: int) -> list[str]:
    """N SQL jobs, started now (before the measurement)."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as client:
        headers = {"Authorization": f"Bearer {token(client, url)}"}
        return [
            client.post("/v3/sql/carto_dw/job", json={"query": "SELECT 1"}, headers=headers).json()[
                "externalId"
            ]
            for _ in range(n)
        ]


async def provider(job_ids: list[str], poll_interval: float, first: list[float], started: float) -> None:
    from carto_provider.triggers.base import CartoJobTrigger

    async def follow(job_id: str) -> None:
        trigger = CartoJobTrigger(job_id=job_id, poll_interval=poll_interval, end_time=time.time() + 900)
        real_fetch = trigger._fetch

        async def timed_fetch(hook: Any) -> Any:
            job = await real_fetch(hook)
            if getattr(timed_fetch, "first", True):
                timed_fetch.first = False  # type: ignore[attr-defined]
                first.append(time.monotonic() - started)
            return job

        trigger._fetch = timed_fetch  # type: ignore[method-assign]
        async for event in trigger.run():
            if event.payload.get("status") not in ("success", None):
                raise RuntimeError(f"trigger ended with {event.payload}")

    await asyncio.gather(*(follow(job_id) for job_id in job_ids))


async def baseline(
    url: str, job_ids: list[str], poll_interval: float, first: list[float], started: float
) -> None:
    import httpx

    from carto_provider.api.jobs import SQL_JOB, CartoJob, JobWatch

    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        headers = {"Authorization": f"Bearer {await asyncio.to_thread(token, httpx.Client(), url)}"}

        async def follow(job_id: str) -> None:
            watch = JobWatch(poll_interval, time.time() + 900)
            path = SQL_JOB.status_path(job_id, "carto_dw")
            job = CartoJob.from_response(
                SQL_JOB, (await client.get(path, headers=headers)).json(), job_id=job_id
            )
            first.append(time.monotonic() - started)
            while (delay := watch.next_delay(job)) is not None:
                await asyncio.sleep(delay)
                body = (await client.get(path, headers=headers)).json()
                job = CartoJob.from_response(SQL_JOB, body, job_id=job_id)

        await asyncio.gather(*(follow(job_id) for job_id in job_ids))


async def measure(mode: str, url: str, job_ids: list[str], poll_interval: float) -> dict[str, Any]:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    sockets = Sockets(port)
    sockets.start()
    stalls: list[tuple[float, float]] = []
    done = asyncio.Event()
    first: list[float] = []
    pauses = GcPauses()
    cpu, started = os.times(), time.monotonic()
    tick = asyncio.ensure_future(ticker(stalls, done, started))
    if mode == "provider":
        await provider(job_ids, poll_interval, first, started)
    else:
        await baseline(url, job_ids, poll_interval, first, started)
    wall = time.monotonic() - started
    after = os.times()
    done.set()
    await tick
    sockets.stop.set()
    sockets.join()
    sockets.sample()
    return {
        "mode": mode,
        "n": len(job_ids),
        "rss_peak_mb": rss_peak_mb(),
        "stall_max": max(stalls, default=(0.0, 0.0))[0],
        "stall_max_at": max(stalls, default=(0.0, 0.0))[1],
        "cpu_seconds": (after.user - cpu.user) + (after.system - cpu.system),
        "connections_opened": len(sockets.seen),
        "connections_most": sockets.most,
        "first_poll_max": max(first, default=float("nan")),
        "wall": wall,
        "gc_pause_max": pauses.longest,
        "gc_full": pauses.full,
    }


def main(argv: list[str]) -> int:
    mode, url, n, poll_interval = argv
    # What a triggerer has loaded before it runs triggers: Airflow, and the trigger's module.
    import airflow.triggers.base  # noqa: F401

    import carto_provider.triggers.base  # noqa: F401

    job_ids = submit(url, int(n))
    print(json.dumps(asyncio.run(measure(mode, url, job_ids, float(poll_interval)))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
