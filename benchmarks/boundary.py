"""The trust boundary measured: memory, deadlines and lock waits against a hostile CARTO (issue 20).

Runnable alone::

    python benchmarks/boundary.py                 # this checkout
    python benchmarks/boundary.py --code DIR      # another checkout (e.g. the code before the fix)
    python benchmarks/boundary.py --quick         # small sizes, to check the script

A hostile server (``tests/hostile/server.py``) runs in this process; every measurement runs the
provider in a fresh child process (``--code``'s ``carto_provider`` first on its path), which reports
its own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``) and its RSS before the call:

* ``query``: a 150 MiB ``/query`` answer through the DB-API (``cursor.execute`` + ``fetchall``), with
  the default budget and with ``max_response_bytes`` = 64 MiB (when the code takes it);
* ``bomb``: the same answer gzip-compressed (about 0.4 MiB sent, 150 MiB once inflated);
* ``token-trickle`` / ``query-trickle``: a token request (one attempt, then the default token
  retries) and a ``/query`` with ``timeout=(1, 2)`` against a server sending one byte every 0.4 s
  (seconds until the call ends, and how);
* ``lock``: connection A's token fetch waits 5 s on a slow auth server; how long connection B's
  ``get_access_token()`` (another auth server, answering at once) waits meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.hostile.server import HostileServer, MiB, big_json, gzip_bomb, json_body, trickle  # noqa: E402

CHILD = r"""
import json, os, resource, sys, threading, time
def rss_mib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
what, budget = sys.argv[1], int(sys.argv[2])
from carto_provider.hooks.dbapi import CartoDbApiHook
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.api.retry import CartoRetryPolicy
import inspect
from carto_provider.hooks.carto import CartoAuthHook
if budget and "max_response_bytes" not in inspect.signature(CartoAuthHook.__init__).parameters:
    print(json.dumps({"outcome": "not measured: no max_response_bytes", "seconds": 0, "peak_rss_mib": 0}))
    sys.stdout.flush()
    os._exit(0)
def hook(cls, **kw):
    return cls(max_response_bytes=budget, **kw) if budget else cls(**kw)
import carto_provider
out = {"code": carto_provider.__file__}
start = time.monotonic()
try:
    if what in ("query", "bomb"):
        h = hook(CartoDbApiHook)
        h.get_access_token()
        cursor = h.get_conn().cursor()
        out["rss_before_mib"] = rss_mib()
        cursor.execute("SELECT * FROM big")
        out["rows"] = len(cursor.fetchall())
    elif what == "token-trickle":
        CartoSQLHook(timeout=(1, 2), retry_policy=CartoRetryPolicy(attempts=1)).get_access_token()
    elif what == "token-trickle-retried":
        CartoSQLHook(timeout=(1, 2)).get_access_token()
    elif what == "query-trickle":
        h = CartoSQLHook(query_timeout=(1, 2))
        h.get_access_token()
        start = time.monotonic()
        h.run_query("SELECT 1")
    elif what == "lock":
        a = CartoSQLHook("carto_a")
        a.settings  # read the connection first, so A's fetch starts at once
        threading.Thread(target=a.get_access_token, daemon=True).start()
        time.sleep(2.0)  # A's token request is now waiting on the slow server (5 s)
        start = time.monotonic()
        CartoSQLHook("carto_b").get_access_token()
    out["outcome"] = "answered"
except Exception as exc:
    out["outcome"] = f"{type(exc).__name__}: {str(exc)[:160]}"
out["seconds"] = round(time.monotonic() - start, 2)
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"""


def child(code: Path, what: str, connections: dict[str, dict[str, Any]], budget: int = 0) -> dict[str, Any]:
    """Run one measurement in a fresh process on ``code``'s provider; its JSON report."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home, "PYTHONPATH": str(code), "AIRFLOW_HOME": home}
        env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home}/airflow.db"
        for conn_id, conn in connections.items():
            conn["extra"]["token_cache_dir"] = str(Path(home) / "cache")
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        done = subprocess.run(
            [sys.executable, "-c", CHILD, what, str(budget)],
            cwd=code,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{what} child failed: {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def measure(code: Path, size: int) -> list[tuple[str, dict[str, Any]]]:
    """Every measurement against ``code``."""
    results = []
    with HostileServer() as server:
        conn = {"carto_default": server.connection()}
        server.on("POST /v3/sql/carto_dw/query", big_json(size))
        results.append((f"query {size // MiB} MiB, default budget", child(code, "query", conn)))
        results.append((f"query {size // MiB} MiB, budget 64 MiB", child(code, "query", conn, 64 * MiB)))
        server.on("POST /v3/sql/carto_dw/query", gzip_bomb(size))
        results.append((f"gzip bomb {size // MiB} MiB, default budget", child(code, "bomb", conn)))
        results.append((f"gzip bomb {size // MiB} MiB, budget 64 MiB", child(code, "bomb", conn, 64 * MiB)))
        server.on("POST /v3/sql/carto_dw/query", trickle(0.4, b'{"rows": [], "schema": []}'))
        results.append(("query trickle, timeout=(1, 2)", child(code, "query-trickle", conn)))
        server.token_answer = trickle(0.4, b'{"access_token": "t0123456789", "expires_in": 3600}')
        results.append(("token trickle, timeout=(1, 2), 1 attempt", child(code, "token-trickle", conn)))
        label = "token trickle, timeout=(1, 2), TOKEN_RETRY (90 s budget)"
        results.append((label, child(code, "token-trickle-retried", conn)))
    with HostileServer() as slow, HostileServer() as fast:
        token = {"access_token": "slow-token-0123456789", "expires_in": 3600}

        def late(handler: Any) -> None:
            time.sleep(5)
            json_body(token)(handler)

        slow.token_answer = late
        conns = {"carto_a": slow.connection(), "carto_b": fast.connection()}
        results.append(("B's token while A's fetch waits 5 s", child(code, "lock", conns)))
    return results


def main() -> None:
    """Measure and print one Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--code", type=Path, default=REPO, help="the checkout whose carto_provider is measured"
    )
    parser.add_argument("--quick", action="store_true", help="a 16 MiB answer instead of 150 MiB")
    args = parser.parse_args()
    size = (16 if args.quick else 150) * MiB
    print(f"code: {args.code}\n\n| measurement | peak RSS MiB | RSS before call | seconds | outcome |")
    print("|---|---|---|---|---|")
    for label, r in measure(args.code.resolve(), size):
        before = r.get("rss_before_mib")
        print(
            f"| {label} | {r['peak_rss_mib']:.0f} | {'' if before is None else f'{before:.0f}'} | "
            f"{r['seconds']} | {r['outcome'].replace('|', '/')} |"
        )


if __name__ == "__main__":
    main()
