"""Item 3: the cost of a warm ``get_access_token()`` inside one process, with :mod:`timeit`.

``python -m benchmarks.hotpath LIBRARY CREDENTIALS_FILE EMULATOR_URL`` is the measuring process: it
gets one token (filling the cache), then times, with ``timeit`` (loop count from ``autorange``,
best and median of several repeats):

* ``auth.get_access_token()`` on an existing ``CartoAuth`` (the call a task makes over and over);
* ``CartoAuth.from_m2m(credentials).get_access_token()`` (a new object per call, as a task that
  builds its client inside the task does; carto-auth rewrites its cache file on every construction).
"""

from __future__ import annotations

import json
import statistics
import sys
import timeit
from collections.abc import Callable
from typing import Any

from benchmarks.common import (
    Context,
    Section,
    goal_ratio,
    json_from_child,
    table,
)
from benchmarks.libs import CARTO_AUTH, LABELS, LIBRARIES, PROVIDER, auth_factory

REPEATS = 7
CASES = {
    "warm": "`auth.get_access_token()`",
    "new": "`CartoAuth.from_m2m(file).get_access_token()`",
}


def time_call(call: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Seconds per call: best and median over ``repeats`` runs of an ``autorange`` loop count."""
    timer = timeit.Timer(call)
    loops, _ = timer.autorange()
    runs = [total / loops for total in timer.repeat(repeat=repeats, number=loops)]
    return {"loops": loops, "best": min(runs), "median": statistics.median(runs)}


def measure(library: str, credentials: str, emulator_url: str, repeats: int = REPEATS) -> dict[str, Any]:
    """Run in the measuring process: both cases for one library."""
    build = auth_factory(library, credentials, emulator_url)
    auth = build()
    if not auth.get_access_token():
        raise RuntimeError("no token")
    return {
        "warm": time_call(auth.get_access_token, repeats),
        "new": time_call(lambda: build().get_access_token(), repeats),
    }


def hot_path(ctx: Context) -> Section:
    """Run one measuring process per library and tabulate."""
    results: dict[str, dict[str, Any]] = {}
    for lib in LIBRARIES:
        home = ctx.home("hotpath", lib)
        results[lib] = json_from_child(
            "benchmarks.hotpath",
            lib,
            str(ctx.credentials),
            ctx.emulator.url,
            home=home,
            what=f"{LABELS[lib]} hot-path",
        )

    def micro(value: float) -> str:
        return f"{value * 1e6:.2f} µs" if value < 1e-3 else f"{value * 1e3:.2f} ms"

    rows = []
    for case, call in CASES.items():
        for lib in LIBRARIES:
            r = results[lib][case]
            rows.append((call, LABELS[lib], micro(r["median"]), micro(r["best"]), f"{r['loops']:,}"))
    ours, seed = results[PROVIDER], results[CARTO_AUTH]
    return Section(
        3,
        "Warm `get_access_token()` in one process",
        "One process per library gets a token (filling its cache), then `timeit` times each call: the "
        f"loop count comes from `autorange()` (at least 0.2 s per run), then {REPEATS} runs; the table "
        "shows the median and the best time per call. The first row is the call a task repeats on one "
        "`CartoAuth`; the second builds a new `CartoAuth` from the credentials file for every call.",
        table(["Call", "Library", "Median per call", "Best per call", "Loops per run"], rows),
        environment=ctx.environment(),
        notes=[
            "airflow-provider-carto answers from a process-wide in-memory copy of the cache, checking "
            "the refresh windows on each call; carto-auth compares a timestamp. A new carto-auth object "
            "reads the cache file and writes it again; a new airflow-provider-carto object reads the "
            "credentials file and builds an HTTP session but finds the token in memory.",
        ],
        headline=[
            "A warm `get_access_token()` costs "
            f"{micro(ours['warm']['median'])} with airflow-provider-carto vs "
            f"{micro(seed['warm']['median'])} with carto-auth 0.2.0 "
            f"(**{goal_ratio(ours['warm']['median'], seed['warm']['median'])}**, goal ≤ 1.0); a new "
            f"client plus a token costs {micro(ours['new']['median'])} vs {micro(seed['new']['median'])} "
            f"({goal_ratio(ours['new']['median'], seed['new']['median'])}).",
        ],
    )


if __name__ == "__main__":
    library_arg, credentials_arg, url_arg = sys.argv[1:4]
    print(json.dumps(measure(library_arg, credentials_arg, url_arg)), flush=True)
