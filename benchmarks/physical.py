"""Item 8: the provider measured against the physical limit, not against carto-auth.

* **Cold burst p50**: section 1's bursts (run here when section 1 was not), against carto-auth 0.2.0.
* **Triggerer**: N ``CartoJobTrigger.run()`` generators in one event loop in one process, as
  Airflow's triggerer runs them (:mod:`benchmarks.triggerer_child`), following N SQL jobs of the
  emulator on loopback; the baseline follows the same jobs on the same poll schedule through one
  shared, concurrency-limited ``httpx.AsyncClient``. Peak RSS, the longest event-loop stall (against
  Airflow's own 0.2 s warning), TCP connections opened (against the 100 a shared client may open) and
  CPU per poll.
* **Cluster**: ``carto_daily_etl`` end to end in the Celery cluster, deferrable vs polling, read from
  the cluster section ``make bench-cluster`` wrote into RESULTS.md.
* **Query**: a ``/query`` of 199,999 rows (CARTO returns at most 200,000) read through
  ``CartoSQLHook.run_query`` vs a raw ``httpx.post`` + ``json.loads``, each in its own process: wall
  time and peak RSS above the process's RSS before the query.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from benchmarks.bursts import COLD_SIZES, run_burst, warm_up_emulator
from benchmarks.common import (
    RESULTS,
    BenchmarkError,
    Context,
    Section,
    json_from_child,
    method_text,
    percentile,
    table,
)
from benchmarks.libs import CARTO_AUTH, LIBRARIES, PROVIDER

#: The section's number in RESULTS.md; its table is also README.md's Performance table.
NUMBER = 8
TRIGGERS = 1000
QUICK_TRIGGERS = 50
JOB_SECONDS = 60.0
POLL_INTERVAL = 5.0
#: Airflow's triggerer warns when a trigger blocks its loop for longer than this.
AIRFLOW_STALL_WARNING = 0.2
SHARED_CLIENT_CONNECTIONS = 100
QUERY_ROWS = 199_999
CLUSTER_ROW = re.compile(r"`carto_daily_etl`, one run end to end[^|]*\| ([\d.]+) s / ([\d.]+) s \|")


def cold_p50(ctx: Context) -> dict[tuple[int, str], float]:
    """The cold bursts' p50 by (N, library): section 1's, or measured now."""
    if "cold_p50" not in ctx.figures:
        warm_up_emulator(ctx)
        ctx.figures["cold_p50"] = {
            (n, lib): percentile(run_burst(ctx, lib, ctx.home("physical", f"{lib}-{n}"), n).times, 50)
            for n in COLD_SIZES
            for lib in LIBRARIES
        }
    return ctx.figures["cold_p50"]


def triggerer(ctx: Context, mode: str, n: int) -> dict[str, Any]:
    """One triggerer process following ``n`` jobs it starts, in ``mode``; its figures and its polls."""
    from carto_provider.testing.routes.sql import sql_api

    sql_api(ctx.emulator.state).settings.job_duration = JOB_SECONDS
    home = ctx.home("triggerer", mode)
    polls_before = ctx.emulator.calls("GET /v3/sql/carto_dw/job/*")
    env_home = home
    (env_home / "airflow").mkdir()
    figures = json_from_child(
        "benchmarks.triggerer_child",
        mode,
        ctx.emulator.url,
        str(n),
        str(POLL_INTERVAL),
        home=home,
        what=f"triggerer ({mode})",
        timeout=JOB_SECONDS * 10 + 300,
        env={
            "AIRFLOW_CONN_CARTO_DEFAULT": ctx.emulator.airflow_connection_json(),
            "AIRFLOW_HOME": str(env_home / "airflow"),
        },
    )
    figures["polls"] = ctx.emulator.calls("GET /v3/sql/carto_dw/job/*") - polls_before
    return figures


def cluster_etl() -> tuple[float, float] | None:
    """``carto_daily_etl`` end to end (deferrable, polling) from the cluster section, if written."""
    found = CLUSTER_ROW.search(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else None
    return (float(found.group(1)), float(found.group(2))) if found else None


def query(ctx: Context, mode: str) -> dict[str, Any]:
    home = ctx.home("query", mode)
    return json_from_child(
        "benchmarks.query_child",
        mode,
        str(QUERY_ROWS),
        home=home,
        what=f"query ({mode})",
        env={"AIRFLOW_CONN_CARTO_DEFAULT": ctx.emulator.airflow_connection_json()},
    )


def row(
    figure: str, ours: float | None, base: float | None, goal: float, unit: str, baseline: str
) -> list[str]:
    if ours is None or base is None:
        return [figure, "n/a", f"n/a ({baseline})", "n/a", f"<= {goal}"]
    value = ours / base
    mark = "" if value <= goal else " (over)"
    return [
        figure,
        f"{ours:.3g} {unit}",
        f"{base:.3g} {unit} ({baseline})",
        f"{value:.2f}{mark}",
        f"<= {goal}",
    ]


def physical(ctx: Context) -> Section:
    """Item 8: one table, every ratio from this run."""
    started, load_before = time.monotonic(), os.getloadavg()
    p50 = cold_p50(ctx)
    rows = [
        row(
            f"cold burst p50, N={n}",
            p50.get((n, PROVIDER)),
            p50.get((n, CARTO_AUTH)),
            1.0,
            "s",
            "carto-auth 0.2.0",
        )
        for n in COLD_SIZES
    ]
    n = QUICK_TRIGGERS if ctx.quick else TRIGGERS
    ours, shared = triggerer(ctx, "provider", n), triggerer(ctx, "baseline", n)
    label = f"{n} triggers"
    rows += [
        row(
            f"triggerer RSS, {label}",
            ours["rss_peak_mb"],
            shared["rss_peak_mb"],
            1.5,
            "MB",
            "one shared httpx client",
        ),
        row(
            f"triggerer event-loop stall max, {label}",
            ours["stall_max"],
            AIRFLOW_STALL_WARNING,
            1.0,
            "s",
            "Airflow's warning",
        ),
        row(
            f"triggerer TCP connections, {label}",
            ours["connections_opened"],
            SHARED_CLIENT_CONNECTIONS,
            1.0,
            "",
            "a shared client's limit",
        ),
        row(
            f"triggerer CPU per poll, {label}",
            ours["cpu_seconds"] / max(ours["polls"], 1) * 1000,
            shared["cpu_seconds"] / max(shared["polls"], 1) * 1000,
            1.5,
            "ms",
            "the shared client",
        ),
    ]
    etl = cluster_etl()
    rows.append(
        row(
            "cluster carto_daily_etl end to end, deferrable vs polling",
            etl[0] if etl else None,
            etl[1] if etl else None,
            1.2,
            "s",
            "the polling run, make bench-cluster",
        )
    )
    try:
        q_ours, q_raw = query(ctx, "provider"), query(ctx, "raw")
    except BenchmarkError as exc:
        q_ours = q_raw = None
        print(f"[bench] query rows: {exc}", flush=True)
    rows += [
        row(
            "query 200k rows, wall time",
            q_ours and q_ours["seconds"],
            q_raw and q_raw["seconds"],
            1.25,
            "s",
            "raw httpx + json",
        ),
        row(
            "query 200k rows, peak memory",
            q_ours and q_ours["peak_mb"],
            q_raw and q_raw["peak_mb"],
            1.5,
            "MB",
            "raw httpx + json",
        ),
    ]
    detail = (
        f"Triggerer details: provider first poll at most {ours['first_poll_max']:.2f} s after start "
        f"(baseline {shared['first_poll_max']:.2f} s), {ours['connections_most']} connections open at once "
        f"(baseline {shared['connections_most']}, opened {shared['connections_opened']}), baseline stall max "
        f"{shared['stall_max']:.3f} s, {ours['polls']} / {shared['polls']} polls, "
        f"wall {ours['wall']:.0f} s / {shared['wall']:.0f} s, longest full-GC pause "
        f"{full_gc(ours):.3f} s / {full_gc(shared):.3f} s; {JOB_SECONDS:.0f} s jobs, "
        f"poll_interval={POLL_INTERVAL:.0f}. "
        f"Section time {time.monotonic() - started:.0f} s."
    )
    return Section(
        NUMBER,
        "Physical limits",
        method_text(__doc__),
        table(["Figure", "This project", "Baseline", "Ratio", "Goal"], rows),
        notes=[detail],
        environment=f"{ctx.environment()}; load average {loads(load_before)} at the start, "
        f"{loads(os.getloadavg())} at the end",
    )


def full_gc(figures: dict[str, Any]) -> float:
    """The triggerer child's longest generation-2 collection."""
    return float((figures.get("gc_pause_max") or [0.0, 0.0, 0.0])[-1])


def loads(averages: tuple[float, float, float]) -> str:
    """``os.getloadavg()`` as ``1-min/5-min/15-min``."""
    return "/".join(f"{x:.2f}" for x in averages)
