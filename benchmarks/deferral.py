"""Item 5: worker-slot seconds for K concurrent 60-second CARTO SQL jobs, deferrable vs polling.

Real Airflow runs the DAGs of ``benchmarks/dags/carto_bench_deferral.py`` (one ``CartoSQLOperator``
each) with ``dag.test()`` on SQLite, one process per DAG run, all started at the same instant against
the emulator, whose SQL jobs take 60 s (:mod:`benchmarks.deferral_task` times each part of the run).
*Worker-slot seconds* are the operator's ``execute()`` (up to the deferral, or through the whole wait
when polling) plus ``execute_complete()`` after the trigger fired. *Task runs* add what the task
runner does around them (the Task SDK's ``run_task_in_process`` calls: start-up, the execution API
calls, XCom): a deferrable task pays that twice, to start and to resume. ``dag.test()`` runs the
trigger in the same process; a deployment runs it in the triggerer, so its time is shown apart and
is no worker's.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO,
    BenchmarkError,
    Context,
    Section,
    method_text,
    python_module,
    ratio,
    seconds,
    table,
    version_of,
)

JOBS = 4
JOB_SECONDS = 60.0
MODES = ("deferrable", "polling")
START_DELAY = 1.0
READY_TIMEOUT = 300.0
RUN_TIMEOUT = 600.0
DAGS = REPO / "benchmarks" / "dags"


def missing_parts() -> str | None:
    """What this benchmark needs from the provider and the emulator but does not find, if anything."""
    import importlib.util

    for module in (
        "carto_provider.operators.sql",
        "carto_provider.triggers.base",
        "carto_provider.testing.routes.sql",
    ):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # its package is missing too
            found = False
        if not found:
            return (
                f"`{module}` does not exist yet (issue 6: SQL operators, triggers, the emulator's SQL API)."
            )
    from carto_provider.testing.routes import ROUTER_MODULES

    if "carto_provider.testing.routes.sql" not in ROUTER_MODULES:
        return (
            "the emulator does not mount its SQL API yet "
            "(`carto_provider.testing.routes.sql` is not in ROUTER_MODULES)."
        )
    return None


def set_job_duration(emulator: Any, seconds_: float) -> None:
    """Make the emulator's SQL jobs run for ``seconds_``."""
    from carto_provider.testing.routes.sql import sql_api

    sql_api(emulator.state).settings.job_duration = seconds_


def airflow_home(ctx: Context, template: Path | None, name: str) -> tuple[Path, dict[str, str]]:
    """An Airflow home (a copy of the migrated template database, if given) and its environment."""
    from carto_provider.testing.demo import airflow_env

    home = ctx.scratch / "airflow" / name
    home.mkdir(parents=True)
    if template is not None:
        shutil.copy2(template / "airflow.db", home / "airflow.db")
    env = airflow_env(home, DAGS, ctx.emulator)
    env.update(
        {"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"}
    )
    return home, env


def migrated_template(ctx: Context) -> Path:
    """One ``airflow db migrate``, copied to every run's home (migrating each would take minutes)."""
    home, env = airflow_home(ctx, None, "template")
    airflow = str(Path(sys.executable).with_name("airflow"))
    proc = subprocess.run(
        [airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        raise BenchmarkError(f"airflow db migrate failed: {proc.stderr.strip()[-2000:]}")
    return home


def run_all(ctx: Context, template: Path, jobs: int) -> list[dict[str, Any]]:
    """Start ``jobs`` DAG runs per mode at one instant; return each run's report."""
    procs = []
    for mode in MODES:
        for i in range(jobs):
            home, env = airflow_home(ctx, template, f"{mode}-{i}")
            log = (home / "run.log").open("w")
            proc = subprocess.Popen(
                python_module("benchmarks.deferral_task", f"carto_bench_sql_{mode}"),
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
            procs.append((mode, home, proc))
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        for _mode, home, proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "ready" or time.monotonic() > deadline:
                raise BenchmarkError(f"an Airflow run did not start: {tail(home / 'run.log')}")
        start = time.time() + START_DELAY
        for _, _, proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start!r}\n")
            proc.stdin.flush()
        reports = []
        for mode, home, proc in procs:
            out, _ = proc.communicate(timeout=RUN_TIMEOUT)
            lines = out.strip().splitlines()
            if proc.returncode != 0 or not lines:
                raise BenchmarkError(f"the {mode} Airflow run crashed: {tail(home / 'run.log')}")
            report = json.loads(lines[-1])
            if not report["state"].lower().endswith("success"):
                raise BenchmarkError(f"the {mode} DAG run ended {report['state']}: {tail(home / 'run.log')}")
            report["mode"] = mode
            check_shape(report)
            reports.append(report)
        return reports
    finally:
        for _, _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def check_shape(report: dict[str, Any]) -> None:
    """A deferrable run must have deferred (two task runs around one trigger run), a polling run not."""
    kinds = [s["kind"] for s in report["segments"] if s["kind"] != "operator"]
    expected = ["slot", "trigger", "slot"] if report["mode"] == "deferrable" else ["slot"]
    if kinds != expected:
        raise BenchmarkError(f"the {report['mode']} run went {kinds}, not {expected}: the comparison is void")


def tail(path: Path, chars: int = 2500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def spent(report: dict[str, Any], kind: str) -> float:
    return sum(s["end"] - s["start"] for s in report["segments"] if s["kind"] == kind)


def deferral(ctx: Context) -> Section:
    """Run the DAGs and tabulate."""
    title = "Deferral: worker-slot seconds for concurrent 60-second CARTO jobs"
    missing = missing_parts()
    if missing:
        return Section(5, title, method_text(__doc__), skipped=missing)
    jobs, job_seconds = (2, 15.0) if ctx.quick else (JOBS, JOB_SECONDS)
    set_job_duration(ctx.emulator, job_seconds)
    template = migrated_template(ctx)
    reports = run_all(ctx, template, jobs)
    own, runs_total, rows = {}, {}, []
    for mode in MODES:
        runs = [r for r in reports if r["mode"] == mode]
        slot = [spent(r, "operator") for r in runs]
        durations = [ti["duration"] for r in runs for ti in r["task_instances"] if ti["duration"] is not None]
        own[mode], runs_total[mode] = sum(slot), sum(spent(r, "slot") for r in runs)
        rows.append(
            (
                mode,
                len(runs),
                f"**{sum(slot):.1f} s**",
                seconds(statistics.median(slot)),
                seconds(runs_total[mode]),
                seconds(sum(spent(r, "trigger") for r in runs)),
                seconds(statistics.median(durations)) if durations else "-",
            )
        )
    return Section(
        5,
        title,
        method_text(__doc__)
        + f" {jobs} runs per mode, {2 * jobs} processes at once; SQL jobs take {job_seconds:.0f} s; the "
        "operators check the job's status at most every 10 s (the default `poll_interval`), starting 1 s "
        "apart and doubling.",
        table(
            [
                "Mode",
                "Concurrent jobs",
                "Worker-slot seconds (total)",
                "Per task (median)",
                "Task runs, runner included (total)",
                "In the trigger, no worker slot (total)",
                "Airflow's task-instance duration (median)",
            ],
            rows,
        ),
        notes=[
            "The runner's share is `dag.test()`'s: its in-process execution API is built before the start "
            "instant (a real worker reaches an API server that is already up), but its first request in "
            "each process still pays the server's lazy imports, a few seconds that a deployment's warm API "
            "server would not. *Airflow's task-instance duration* is what the metadata database recorded "
            "(`ti.duration`); for a deferred task it runs from the first start to the end, deferral "
            "included, so it does not measure slot time.",
        ],
        environment=ctx.environment(**{"apache-airflow": version_of("apache-airflow")}),
        headline=[
            f"{jobs} concurrent {job_seconds:.0f}-second CARTO SQL jobs hold worker slots for "
            f"**{own['deferrable']:.1f} s** in all with `deferrable=True` vs **{own['polling']:.0f} s** "
            f"polling ({ratio(own['polling'], own['deferrable'])} less); counting the task runner around "
            f"them, {runs_total['deferrable']:.0f} s vs {runs_total['polling']:.0f} s "
            f"({ratio(runs_total['polling'], runs_total['deferrable'])} less).",
        ],
    )
