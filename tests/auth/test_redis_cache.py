"""The fleet-wide token cache against a real redis-server (Debian's) and the emulator over HTTP.

"Machines" are separate processes with separate local cache directories; the emulator counts the
token requests that reach it. Run as a script, this file is one such machine (see ``machine_main``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if shutil.which("redis-server") is None:  # make system-deps installs it; CI must not skip
    if os.environ.get("CI"):
        raise RuntimeError("redis-server is missing; run `make system-deps`")
    pytest.skip("redis-server is not installed (make system-deps)", allow_module_level=True)

pytestmark = pytest.mark.redis

REPO = Path(__file__).resolve().parents[2]
REDIS_PASSWORD = "redis-pass-7f3a9c"
TOKEN_LATENCY = 0.3  # widens the window in which machines race for a token


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Any]:
    from carto_provider.testing.redis_server import RedisServer

    with RedisServer(password=REDIS_PASSWORD) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    return str(redis_server.url)


def dead_redis_url() -> str:
    from carto_provider.testing.redis_server import free_port

    return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0"


def make_auth(emulator: Any, cache_file: Path, redis_url: str, **cache_options: Any) -> Any:
    """A CartoAuth for the emulator's client whose cache is Redis over ``cache_file``."""
    from carto_provider.auth.cache.policy import TokenCache
    from carto_provider.auth.cache.redis import RedisTokenCache
    from carto_provider.auth.carto_auth import CartoAuth

    cache = RedisTokenCache(redis_url, emulator.client_secret, local=TokenCache(cache_file), **cache_options)
    return CartoAuth.from_values(
        emulator.url, emulator.client_id, emulator.client_secret, auth_url=emulator.url, cache=cache
    )


# ---------------------------------------------------------------------------- many machines


def start_together(commands: list[tuple[list[str], dict[str, str]]], go: Path) -> list[tuple[str, str]]:
    """Start processes that print ``ready`` then call :func:`wait_for_go`; release them at one instant
    by creating ``go``; return each one's (stdout, stderr)."""
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for argv, env in commands
    ]
    for proc in procs:
        assert proc.stdout is not None
        if not any(line.strip() == "ready" for line in proc.stdout):
            pytest.fail(f"a process exited before it was ready: {proc.communicate()[1][-3000:]}")
    go.touch()
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    return outputs


def wait_for_go(go: str | Path) -> None:
    """The other half of :func:`start_together` (in the started process)."""
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.005)


def last_json(stdout: str) -> dict:
    """The last line of ``stdout`` that is a JSON object (Airflow may log to stdout too)."""
    return json.loads(next(line for line in reversed(stdout.splitlines()) if line.startswith("{")))


def run_machines(emulator: Any, redis_url: str, cache_files: list[Path], tmp_path: Path) -> list[dict]:
    """One process per cache file, released together; what each reported, with its log."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    commands = []
    for cache_file in cache_files:
        spec = {
            "url": emulator.url,
            "client_id": emulator.client_id,
            "secret": emulator.client_secret,
            "redis_url": redis_url,
            "cache_file": str(cache_file),
            "go": str(tmp_path / "go"),
        }
        commands.append(([sys.executable, __file__, json.dumps(spec)], env))
    outputs = start_together(commands, tmp_path / "go")
    return [{**last_json(out), "log": err} for out, err in outputs]


def test_machines_with_separate_local_caches_make_one_token_request(carto_emulator, redis_url, tmp_path):
    carto_emulator.set_latency("POST /oauth/token", TOKEN_LATENCY)
    files = [tmp_path / f"machine-{i}" / "token_m2m.json" for i in range(6)]

    results = run_machines(carto_emulator, redis_url, files, tmp_path)

    assert carto_emulator.token_requests() == 1
    assert len({r["fingerprint"] for r in results}) == 1
    assert all(f.exists() for f in files)  # every machine also keeps the token locally
    for result in results:
        assert REDIS_PASSWORD not in result["log"]
        assert result["token_tail"] not in result["log"]
    assert sum("taken from the Redis token cache" in r["log"] for r in results) == 5


def test_redis_down_falls_back_to_single_flight_per_machine(carto_emulator, tmp_path):
    carto_emulator.set_latency("POST /oauth/token", TOKEN_LATENCY)
    shared_file = tmp_path / "one-machine" / "token_m2m.json"

    results = run_machines(carto_emulator, dead_redis_url(), [shared_file] * 4, tmp_path)

    assert carto_emulator.token_requests() == 1
    assert len({r["fingerprint"] for r in results}) == 1
    warned = [r for r in results if "WARNING" in r["log"] and "is unavailable" in r["log"]]
    assert warned, [r["log"] for r in results]
    assert all(REDIS_PASSWORD not in r["log"] for r in results)
    assert all("redis://:***@127.0.0.1:" in r["log"] for r in warned)


# ---------------------------------------------------------------------------- encryption


def test_redis_holds_only_an_encrypted_entry_bound_to_secret_and_key(carto_emulator, redis_url, tmp_path):
    import redis

    from carto_provider.auth.cache._seal import unseal
    from carto_provider.auth.cache.redis import KEY_PREFIX
    from carto_provider.auth.cache.stores import CacheKey

    auth = make_auth(carto_emulator, tmp_path / "a" / "t.json", redis_url)
    token = auth.get_token()
    client = redis.Redis.from_url(redis_url)

    assert client.keys("*") == [(KEY_PREFIX + auth.cache_key.id).encode()]  # the lock is gone
    raw = client.get(KEY_PREFIX + auth.cache_key.id)
    for secret_text in (token.value, *token.value.split("."), carto_emulator.client_secret):
        assert secret_text.encode() not in raw
    assert carto_emulator.client_id.encode() not in raw
    assert 0 < client.pttl(KEY_PREFIX + auth.cache_key.id) <= 86400 * 1000

    assert unseal(carto_emulator.client_secret, auth.cache_key, raw).token.value == token.value
    assert unseal("another-client-secret-abcdef", auth.cache_key, raw) is None
    other_key = CacheKey.of("other", client_id="someone-else")
    assert unseal(carto_emulator.client_secret, other_key, raw) is None
    tampered = raw[:-1] + bytes([raw[-1] ^ 1])
    assert unseal(carto_emulator.client_secret, auth.cache_key, tampered) is None


def test_undecryptable_entry_is_ignored_with_a_warning(carto_emulator, redis_url, tmp_path, caplog):
    import redis

    from carto_provider.auth.cache.redis import KEY_PREFIX

    auth = make_auth(carto_emulator, tmp_path / "a" / "t.json", redis_url)
    redis.Redis.from_url(redis_url).set(KEY_PREFIX + auth.cache_key.id, b"\x01" + b"x" * 64)

    with caplog.at_level(logging.WARNING, logger="carto_provider"):
        auth.get_access_token()

    assert carto_emulator.token_requests() == 1
    assert "cannot be decrypted" in caplog.text


# ---------------------------------------------------------------------------- the fleet layer in-process


def test_second_machine_takes_the_token_from_redis(carto_emulator, redis_url, tmp_path):
    first = make_auth(carto_emulator, tmp_path / "a" / "t.json", redis_url)
    second = make_auth(carto_emulator, tmp_path / "b" / "t.json", redis_url)

    assert first.get_access_token() == second.get_access_token()
    assert carto_emulator.token_requests() == 1
    assert second.cache.peek(second.cache_key) is not None  # stored on machine b too


def test_a_rejected_token_is_replaced_once_for_the_whole_fleet(carto_emulator, redis_url, tmp_path):
    machines = [make_auth(carto_emulator, tmp_path / m / "t.json", redis_url) for m in "abc"]
    old = machines[0].get_access_token()
    carto_emulator.revoke(old)

    # A 401 on machines b and c: b fetches the replacement, c finds it in Redis.
    replacement = machines[1].cache.get(machines[1].cache_key, machines[1]._fetch_token, rejected=old)
    again = machines[2].cache.get(machines[2].cache_key, machines[2]._fetch_token, rejected=old)

    assert replacement.value != old
    assert again.value == replacement.value
    assert carto_emulator.token_requests() == 2
    response = machines[0].request("GET", "/v3/connections")  # a retries once after its own 401
    assert response.status_code == 200
    assert carto_emulator.token_requests() == 2


def test_redis_down_warns_once_per_process_and_uses_local_caches(carto_emulator, tmp_path, caplog):
    url = dead_redis_url()
    with caplog.at_level(logging.WARNING, logger="carto_provider"):
        first = make_auth(carto_emulator, tmp_path / "a" / "t.json", url)
        second = make_auth(carto_emulator, tmp_path / "b" / "t.json", url)
        assert first.get_access_token() != second.get_access_token()  # nothing shared between machines
        first.get_access_token()  # a local hit: Redis is not asked again

    warnings = [r for r in caplog.records if "is unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert REDIS_PASSWORD not in caplog.text
    assert carto_emulator.token_requests() == 2


def test_stuck_lock_holder_delays_others_at_most_lock_timeout(carto_emulator, redis_url, tmp_path, caplog):
    import redis

    from carto_provider.auth.cache.redis import LOCK_PREFIX

    auth = make_auth(carto_emulator, tmp_path / "a" / "t.json", redis_url, lock_timeout=0.5)
    holder = redis.Redis.from_url(redis_url).lock(LOCK_PREFIX + auth.cache_key.id, timeout=300)
    assert holder.acquire(blocking=False)
    try:
        with caplog.at_level(logging.WARNING, logger="carto_provider"):
            token = auth.get_token()
        assert holder.owned()  # the stuck holder's lock was left alone
    finally:
        holder.release()

    assert token.value
    assert carto_emulator.token_requests() == 1
    assert "held by a stuck process; fetching a token without it" in caplog.text


def test_redact_url_hides_passwords():
    from carto_provider.api.responses import redact_url

    assert redact_url("redis://:pw@redis:6379/1") == "redis://:***@redis:6379/1"
    assert redact_url("rediss://user:pw@host:6380/0?ssl_cert_reqs=none") == "rediss://user:***@host:6380/0"
    assert redact_url("redis://pw@redis:6379") == "redis://***@redis:6379"
    assert redact_url("redis://redis:6379/1") == "redis://redis:6379/1"
    assert redact_url("redis://redis/0?password=pw") == "redis://redis/0"


# ---------------------------------------------------------------------------- through the Airflow hook


def hook_for(monkeypatch, emulator, cache_dir: Path, **extra: str) -> Any:
    from carto_provider.hooks.carto import CartoAuthHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_CARTO_DEFAULT",
        emulator.airflow_connection_json(cache_dir=str(cache_dir), **extra),
    )
    return CartoAuthHook()


def test_hook_shares_tokens_through_redis_chosen_by_connection_extra(
    carto_emulator, redis_url, tmp_path, monkeypatch
):
    extra = {"cache_backend": "redis", "cache_redis_url": redis_url}
    tokens = {hook_for(monkeypatch, carto_emulator, tmp_path / m, **extra).get_access_token() for m in "ab"}

    assert len(tokens) == 1
    assert carto_emulator.token_requests() == 1
    assert REDIS_PASSWORD not in repr(
        hook_for(monkeypatch, carto_emulator, tmp_path / "c", **extra).get_auth()
    )


def test_hook_takes_redis_settings_from_airflow_config(carto_emulator, redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CARTO__TOKEN_CACHE", "redis")
    monkeypatch.setenv("AIRFLOW__CARTO__TOKEN_CACHE_REDIS_URL", redis_url)
    tokens = {hook_for(monkeypatch, carto_emulator, tmp_path / m).get_access_token() for m in "ab"}
    assert len(tokens) == 1
    assert carto_emulator.token_requests() == 1

    # A connection can still opt out.
    hook_for(monkeypatch, carto_emulator, tmp_path / "c", cache_backend="local").get_access_token()
    assert carto_emulator.token_requests() == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"cache_backend": "memcached"}, "cache_backend must be 'local' or 'redis', not 'memcached'"),
        ({"cache_backend": "redis"}, "[carto] token_cache_redis_url"),
        (
            {"cache_backend": "redis", "cache_redis_url": f"http://:{REDIS_PASSWORD}@host:1/0"},
            "URL 'http://:***@host:1/0' is not valid",
        ),
    ],
)
def test_hook_explains_bad_token_cache_settings(carto_emulator, tmp_path, monkeypatch, extra, message):
    ok, text = hook_for(monkeypatch, carto_emulator, tmp_path, **extra).test_connection()
    assert not ok
    assert message in text
    assert REDIS_PASSWORD not in text


def test_connection_test_works_with_wrong_redis_password_and_hides_it(
    carto_emulator, redis_server, tmp_path, monkeypatch, caplog
):
    url = f"redis://:wrong-{REDIS_PASSWORD}@127.0.0.1:{redis_server.port}/0"
    hook = hook_for(monkeypatch, carto_emulator, tmp_path, cache_backend="redis", cache_redis_url=url)
    with caplog.at_level(logging.WARNING, logger="carto_provider"):
        ok, text = hook.test_connection()

    assert ok, text
    assert "is unavailable" in caplog.text
    assert REDIS_PASSWORD not in caplog.text + text


# ---------------------------------------------------------------------------- one machine (script mode)


def machine_main(spec: dict[str, str]) -> None:
    """Build the cache, report ready, wait for the go file, get a token, print its fingerprint."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    from carto_provider.auth.cache.policy import TokenCache
    from carto_provider.auth.cache.redis import RedisTokenCache
    from carto_provider.auth.carto_auth import CartoAuth
    from carto_provider.auth.tokens import fingerprint

    cache = RedisTokenCache(spec["redis_url"], spec["secret"], local=TokenCache(spec["cache_file"]))
    auth = CartoAuth.from_values(
        spec["url"], spec["client_id"], spec["secret"], auth_url=spec["url"], cache=cache
    )
    wait_for_go(spec["go"])
    token = auth.get_access_token()
    print(json.dumps({"fingerprint": fingerprint(token), "token_tail": token[-16:]}), flush=True)


if __name__ == "__main__":
    machine_main(json.loads(sys.argv[1]))
