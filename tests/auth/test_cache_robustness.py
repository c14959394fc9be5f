"""The token cache never hangs or breaks: real FIFOs, directories, malformed entries and processes.

Anything that could block (a FIFO) runs in a child process with a timeout, so a regression fails the
test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.auth.cache.file import CACHE_FORMAT
from carto_provider.auth.carto_auth import CartoAuth, single_flight_wait

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, logging, sys, time
    from carto_provider.auth.carto_auth import CartoAuth
    from carto_provider.errors import CredentialsError
    from carto_provider.api.retry import CartoRetryPolicy
    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                records.append(record.getMessage())
    logging.getLogger("carto_provider").addHandler(Keep())
    logging.getLogger("carto_provider").setLevel(logging.WARNING)
    url, client_id, secret, cache, start_at = sys.argv[1:6]
    policy = CartoRetryPolicy(attempts=3, initial_wait=0.05, max_wait=0.1, max_retry_after=0.1)
    auth = CartoAuth.from_values(url, client_id, secret, auth_url=url, cache_filepath=cache, retry_policy=policy)
    time.sleep(max(0.0, float(start_at) - time.time()))
    try:
        tokens = [auth.get_access_token(), CartoAuth.from_values(
            url, client_id, secret, auth_url=url, cache_filepath=cache, retry_policy=policy
        ).get_access_token()]
        print(json.dumps({"ok": len(set(tokens)) == 1, "warnings": records}))
    except CredentialsError as exc:
        print(json.dumps({"error": str(exc), "warnings": records}))
    """
)


def run_children(emulator, cache: Path, n: int = 1, delay: float = 0.0) -> list[dict]:
    start_at = repr(time.time() + delay)
    args = [emulator.url, emulator.client_id, emulator.client_secret, str(cache), start_at]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the token cache hung")
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.parametrize("where", ["cache", "lock"])
def test_a_fifo_at_the_cache_or_lock_path_is_bypassed_with_one_warning(carto_emulator, tmp_path, where):
    cache = tmp_path / "t.json"
    os.mkfifo(cache if where == "cache" else tmp_path / "t.json.lock")
    (result,) = run_children(carto_emulator, cache)
    assert result.get("ok"), result
    assert len(result["warnings"]) == 1 and "a FIFO" in result["warnings"][0]
    assert carto_emulator.token_requests() == 1


def test_a_directory_at_the_cache_path_is_bypassed_with_one_warning(carto_emulator, tmp_path):
    cache = tmp_path / "t.json"
    cache.mkdir()
    (result,) = run_children(carto_emulator, cache)
    assert result.get("ok"), result
    assert len(result["warnings"]) == 1 and "a directory" in result["warnings"][0]
    assert cache.is_dir() and not any(cache.iterdir())


def test_a_malformed_entry_affects_only_itself(carto_emulator, tmp_path):
    cache = tmp_path / "t.json"
    good_other = {"access_token": "other", "expires_at": time.time() + 3600, "obtained_at": time.time()}
    entries = {
        "bad-expiry": {"access_token": "x", "expires_at": "soon", "obtained_at": 1},
        "not-an-object": 5,
        "nan": {"access_token": "y", "expires_at": float("nan"), "obtained_at": 1},
        "other-client": good_other,
    }
    cache.write_text(json.dumps({"format": CACHE_FORMAT, "version": 1, "entries": entries}))
    os.chmod(cache, 0o600)
    auth = CartoAuth.from_values(
        carto_emulator.url,
        carto_emulator.client_id,
        carto_emulator.client_secret,
        auth_url=carto_emulator.url,
        cache_filepath=cache,
    )
    token = auth.get_access_token()
    written = json.loads(cache.read_text())["entries"]
    assert written[auth.cache_key.id]["access_token"] == token
    assert written["other-client"]["access_token"] == "other"  # the well-formed neighbour survives


def test_an_outage_costs_one_request_per_retry_round_not_one_per_process(carto_emulator, tmp_path):
    carto_emulator.add_fault("POST /oauth/token", 503, times=1000)
    carto_emulator.set_latency("POST /oauth/token", 0.4)  # the holder is still retrying as the others wait
    results = run_children(carto_emulator, tmp_path / "t.json", n=3, delay=2.5)
    assert all("error" in r for r in results), results
    assert carto_emulator.calls("POST /oauth/token") == 3  # one process's 3 attempts, not 3 x 3
    shared = [r for r in results if "did not try again" in r["error"]]
    assert len(shared) == 2
    assert all("HTTP 503" in r["error"] for r in results)


def test_the_single_flight_wait_covers_the_worst_case_fetch():
    policy = CartoRetryPolicy(attempts=5, initial_wait=0.5, max_wait=10.0, max_retry_after=60.0)
    # 5 attempts x (10 s connect + 30 s read) + 4 waits x 60 s (Retry-After cap) = 440 s, plus margin
    assert single_flight_wait(policy, (10.0, 30.0)) >= 440.0
    assert single_flight_wait(CartoRetryPolicy(attempts=1), 5.0) >= 10.0


def test_the_hooks_cache_waits_out_the_worst_case_fetch_too(carto_emulator, tmp_path, monkeypatch):
    """An Airflow task's waiters must not give up on a holder still retrying (issue 12, item 4)."""
    from carto_provider.api.retry import TOKEN_RETRY
    from carto_provider.api.transport import DEFAULT_TIMEOUT
    from carto_provider.hooks.carto import CartoAuthHook

    connection = carto_emulator.airflow_connection_json(cache_dir=str(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEFAULT", connection)
    storage = CartoAuthHook().get_auth().cache.storage
    assert storage.lock_timeout >= single_flight_wait(TOKEN_RETRY, DEFAULT_TIMEOUT)
