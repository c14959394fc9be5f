"""Items 1 and 2: many task processes asking for a token at the same instant, cold and warm cache.

Each process (:mod:`benchmarks.token_child`) imports its library, reports ready, waits for a start
instant shared by all, then builds ``CartoAuth.from_m2m(credentials)`` and calls
``get_access_token()``, as a task would. The emulator counts the requests that reach its token
endpoint, which answers after a simulated 150 ms round trip.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import (
    REPO,
    TOKEN_LATENCY,
    BenchmarkError,
    Context,
    Section,
    percentile,
    python_module,
    ratio,
    seconds,
    table,
    task_env,
)
from benchmarks.libs import CACHE_FILES, CARTO_AUTH, LABELS, LIBRARIES, PROVIDER, TORN_READ_ERRORS

COLD_SIZES = (8, 32, 64)
WARM_SIZE = 64
#: Time between the last "ready" and the shared start instant, so every process is asleep waiting.
START_DELAY = 0.5
CHILD_TIMEOUT = 180.0


@dataclass
class BurstResult:
    """What one burst of ``n`` processes of one library did."""

    library: str
    n: int
    token_requests: int
    times: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    cache_writes: int = 0
    file_changed: bool = False

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def failure_text(self) -> str:
        if not self.failed:
            return "0"
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.failures.most_common())
        return f"**{self.failed}** ({kinds})"


def cache_file(home: Path, library: str) -> Path:
    """The library's default M2M cache file under ``home``."""
    return home / CACHE_FILES[library]


def file_state(path: Path) -> tuple[int, int, int] | None:
    """(inode, mtime_ns, size) of a file, None when missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def run_burst(ctx: Context, library: str, home: Path, n: int) -> BurstResult:
    """Start ``n`` task processes of ``library`` sharing ``home`` together; collect what they did."""
    cmd = python_module("benchmarks.token_child", library, str(ctx.credentials), ctx.emulator.url)
    procs = [
        subprocess.Popen(
            cmd,
            cwd=REPO,
            env=task_env(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                _, err = proc.communicate(timeout=CHILD_TIMEOUT)
                raise BenchmarkError(f"a {library} task process did not start: {err.strip()[-2000:]}")
        before_requests = ctx.emulator.calls("POST /oauth/token")
        before_file = file_state(cache_file(home, library))
        start = time.time() + START_DELAY
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start!r}\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=CHILD_TIMEOUT)
            lines = out.strip().splitlines()
            if proc.returncode != 0 or not lines:
                raise BenchmarkError(
                    f"a {library} task process crashed (exit {proc.returncode}): {err.strip()[-2000:]}"
                )
            results.append(json.loads(lines[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    result = BurstResult(
        library,
        n,
        ctx.emulator.calls("POST /oauth/token") - before_requests,
        times=[r["seconds"] for r in results if r["ok"]],
        failures=Counter(r["error"] for r in results if not r["ok"]),
        cache_writes=sum(r["cache_writes"] for r in results),
        file_changed=file_state(cache_file(home, library)) != before_file,
    )
    check(result)
    return result


def check(result: BurstResult) -> None:
    """Fail loudly when a library failed other than the way being measured."""
    if result.library == PROVIDER and result.failed:
        raise BenchmarkError(
            f"airflow-provider-carto failed in a burst of {result.n}: {dict(result.failures)}"
        )
    unexpected = {k: v for k, v in result.failures.items() if k not in TORN_READ_ERRORS}
    if unexpected:
        raise BenchmarkError(
            f"{LABELS[result.library]} failed in a burst of {result.n} with {unexpected}, not with torn "
            "reads of its cache: the benchmark set-up is broken (is the auth host redirected?)"
        )
    if not result.times:
        raise BenchmarkError(f"no {LABELS[result.library]} process of {result.n} got a token")


def warm_up(ctx: Context, library: str, home: Path) -> None:
    """Fill ``home``'s cache with one token, as an earlier task would have."""
    result = run_burst(ctx, library, home, 1)
    if result.token_requests != 1 or result.failed:
        raise BenchmarkError(f"warming the {library} cache did not give exactly one token request")


def warm_up_emulator(ctx: Context) -> None:
    """One unmeasured task process of each library: the emulator's first token request and the
    first read of each library's files are not charged to whichever library is measured first."""
    for lib in LIBRARIES:
        run_burst(ctx, lib, ctx.home("warm-up", lib), 1)


def cold_bursts(ctx: Context) -> Section:
    """Item 1: N processes, empty cache."""
    sizes = (8, 32) if ctx.quick else COLD_SIZES
    warm_up_emulator(ctx)
    results = {
        (n, lib): run_burst(ctx, lib, ctx.home("cold", f"{lib}-{n}"), n) for n in sizes for lib in LIBRARIES
    }
    rows = [
        (
            n,
            LABELS[lib],
            results[n, lib].token_requests,
            results[n, lib].failure_text(),
            seconds(percentile(results[n, lib].times, 50)),
            seconds(percentile(results[n, lib].times, 95)),
        )
        for n in sizes
        for lib in LIBRARIES
    ]
    ctx.figures["cold_p50"] = {key: percentile(result.times, 50) for key, result in results.items()}
    top = max(sizes)
    return Section(
        1,
        "Cold burst: N task processes start together on an empty cache",
        "N processes of one library share one `HOME` with no cached token. Each imports its library "
        "(for airflow-provider-carto also httpx, which every Airflow 3 task process has loaded; the "
        "bytecode of both stacks is compiled first, as `pip install` does), "
        "waits for a common start instant, then runs `CartoAuth.from_m2m(credentials).get_access_token()`; "
        "one unmeasured process of each library runs first, so neither pays for the emulator's first "
        "token request. "
        f"The emulator's token endpoint answers after {TOKEN_LATENCY:.2f} s (a real round trip). "
        "*Token requests* are the requests that reached the token endpoint; "
        "*failures* are processes whose call raised (carto-auth's come from reading the cache file while "
        "another process rewrites it in place); times run from the start instant to the token, over the "
        "processes that got one.",
        table(["N", "Library", "Token requests", "Failures", "p50 time to token", "p95 time to token"], rows),
        environment=ctx.environment(),
        headline=[cold_headline(results[top, PROVIDER], results[top, CARTO_AUTH])],
    )


def cold_headline(ours: BurstResult, seed: BurstResult) -> str:
    """The cold burst's line in the headline: requests, then p95 time to token, then any crashes."""
    crashes = f"; {seed.failed} carto-auth processes crashed" if seed.failed else ""
    if ours.failed:
        crashes += f"; {ours.failed} airflow-provider-carto processes failed"
    return (
        f"{ours.n} task processes starting together on an empty cache: **{ours.token_requests} token "
        f"request** with airflow-provider-carto vs **{seed.token_requests}** with carto-auth 0.2.0 "
        f"({ratio(seed.token_requests, ours.token_requests)} fewer); p95 time to a token "
        f"{seconds(percentile(ours.times, 95))} vs {seconds(percentile(seed.times, 95))}{crashes}."
    )


def warm_burst(ctx: Context) -> Section:
    """Item 2: 64 processes on a warm cache."""
    results = {}
    for lib in LIBRARIES:
        home = ctx.home("warm", lib)
        warm_up(ctx, lib, home)
        results[lib] = run_burst(ctx, lib, home, WARM_SIZE)
    rows = [
        (
            LABELS[lib],
            r.token_requests,
            r.failure_text(),
            f"{r.cache_writes} ({'file changed' if r.file_changed else 'file untouched'})",
            seconds(percentile(r.times, 50)),
            seconds(percentile(r.times, 95)),
        )
        for lib, r in results.items()
    ]
    ours, seed = results[PROVIDER], results[CARTO_AUTH]
    return Section(
        2,
        f"Warm burst: {WARM_SIZE} task processes on a warm cache",
        "One task first fills the cache (one token request, not counted). Then "
        f"{WARM_SIZE} processes start together exactly as in the cold burst. *Cache-file rewrites* counts, "
        "with a Python audit hook in each process, every time a process opened the cache file for writing "
        "or renamed a file onto it; *file changed* compares the file's inode, mtime and size before and "
        "after. A failure here is a torn read: carto-auth rewrites the cache file in place "
        "(`open(path, 'w')`) every time a `CartoAuth` is built, cache hit or not, so readers can see it "
        "empty or half written.",
        table(
            ["Library", "Token requests", "Failures (torn reads)", "Cache-file rewrites", "p50", "p95"], rows
        ),
        environment=ctx.environment(),
        headline=[
            f"{WARM_SIZE} task processes on a warm cache: **{ours.failed} failures and {ours.cache_writes} "
            f"cache-file rewrites** with airflow-provider-carto vs **{seed.failed} crashed processes "
            f"(torn reads) and {seed.cache_writes} rewrites** with carto-auth 0.2.0.",
        ],
    )
