"""One process reading a ``/query`` of N rows: ``python -m benchmarks.query_child MODE N``.

``MODE`` is ``provider`` (``CartoSQLHook().run_query``, the connection from
``AIRFLOW_CONN_CARTO_DEFAULT``) or ``raw`` (``httpx.post`` and ``json.loads``, the rows as a list of
dicts). The token is fetched first, outside the timing. Prints one JSON line: seconds and peak RSS
above the RSS before the query (the peak is reset first, ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import json
import os
import sys
import time


def status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str]) -> int:
    mode, n = argv[0], int(argv[1])
    sql = f"SELECT x, CONCAT('row ', CAST(x AS STRING)) AS label FROM UNNEST(GENERATE_ARRAY(1, {n})) AS x"  # noqa: S608 - n is an int
    import httpx

    from carto_provider.hooks.sql import CartoSQLHook

    hook = CartoSQLHook()
    token = hook.get_access_token()
    url = hook.settings.api_base_url.rstrip("/") + "/v3/sql/carto_dw/query"
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")
    before = status_mb("VmRSS")
    started = time.monotonic()
    if mode == "provider":
        rows = hook.run_query(sql).rows
    else:
        answer = httpx.post(url, json={"q": sql}, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        rows = json.loads(answer.content)["rows"]
    seconds = time.monotonic() - started
    if len(rows) != n:
        raise SystemExit(f"{mode}: {len(rows)} rows, not {n}")
    print(json.dumps({"mode": mode, "rows": n, "seconds": seconds, "peak_mb": status_mb("VmHWM") - before}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    raise SystemExit(main(sys.argv[1:]))
