"""Item 5: the token cache sets aside an unusable file in its own directory, never adopts an older or
refused token, and locks per key."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest

from carto_provider.auth.cache.file import FileStore
from carto_provider.auth.cache.policy import TokenCache
from carto_provider.auth.cache.stores import CacheKey
from carto_provider.auth.tokens import AccessToken
from carto_provider.hooks.sql import CartoSQLHook
from tests.hostile.server import HostileServer, json_body

KEY = CacheKey.of("test client", client_id="c1")


def token(value: str, lifetime: float) -> AccessToken:
    now = time.time()
    return AccessToken(value, now + lifetime, now)


def test_a_damaged_file_in_the_providers_own_directory_is_set_aside_once(hostile, monkeypatch, caplog):
    connection = hostile.connection()  # no token_cache_dir: ~/.carto-provider
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEFAULT", __import__("json").dumps(connection))
    own = Path("~/.carto-provider").expanduser()
    own.mkdir(mode=0o700, exist_ok=True)
    cache = own / "token_m2m.json"
    cache.write_bytes(b'{"expiration": 1, "token": "an older format"')  # damaged
    cache.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        CartoSQLHook().get_access_token()
    aside = [p for p in own.iterdir() if p.name.startswith("token_m2m.json.damaged-")]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b'{"expiration"')
    assert stat.S_IMODE(aside[0].stat().st_mode) == 0o600
    assert b'"format"' in cache.read_bytes()  # a working cache again
    assert sum("set aside" in r.getMessage() for r in caplog.records) == 1
    for p in aside:
        p.unlink()


def test_a_foreign_file_elsewhere_is_never_touched(tmp_path):
    foreign = tmp_path / "carto-auth" / "token.json"
    foreign.parent.mkdir(mode=0o700)
    foreign.write_text('{"expiration": 1, "token": "carto-auth"}')
    cache = TokenCache(foreign, lock_timeout=5)
    assert cache.get(KEY, lambda: token("fresh-token-1", 3600)).value == "fresh-token-1"
    assert foreign.read_text() == '{"expiration": 1, "token": "carto-auth"}'
    assert not [name for name in os.listdir(foreign.parent) if "damaged" in name]


def test_a_refused_token_written_back_to_the_store_is_never_adopted(tmp_path):
    path = tmp_path / "c" / "token.json"
    cache = TokenCache(path, lock_timeout=5)
    first = cache.get(KEY, lambda: token("token-refused-0001", 3600))
    second = cache.get(KEY, lambda: token("token-fresh-00002", 1800), rejected=first.value)
    assert second.value == "token-fresh-00002"
    # A replayed store entry brings the refused token back, with a later expiry.
    FileStore(path, lock_timeout=5).write(KEY, token("token-refused-0001", 7200))
    assert cache.get(KEY, lambda: token("token-fresh-00003", 1800)).value == "token-fresh-00002"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_a_redis_entry_older_than_this_machines_token_is_not_adopted(tmp_path):
    from carto_provider.auth.cache.redis import RedisStore
    from carto_provider.testing.redis_server import RedisServer

    with RedisServer(password="pw-hostile-0001") as server:
        one = RedisStore(
            server.url, "secret-0123456789", fallback=FileStore(tmp_path / "a.json", lock_timeout=5)
        )
        one.write(KEY, token("older-token-00001", 600))  # in Redis (a replay looks the same)
        local = FileStore(tmp_path / "b.json", lock_timeout=5)
        local.write(KEY, token("newer-token-00002", 3600))
        two = RedisStore(server.url, "secret-0123456789", fallback=local)
        assert two.read(KEY).token.value == "newer-token-00002"
        assert local.read(KEY).token.value == "newer-token-00002"


def test_one_connections_slow_token_fetch_does_not_block_another(monkeypatch, tmp_path):
    with HostileServer() as slow, HostileServer() as fast:

        def late(handler):
            time.sleep(3)
            json_body({"access_token": "slow-token-0123456789", "expires_in": 3600})(handler)

        slow.token_answer = late
        for conn_id, server in (("carto_a", slow), ("carto_b", fast)):
            conn = server.connection(token_cache_dir=str(tmp_path / "shared"))
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", __import__("json").dumps(conn))
        a = threading.Thread(target=CartoSQLHook("carto_a").get_access_token)
        a.start()
        while not slow.calls("POST /oauth/token"):
            time.sleep(0.01)
        CartoSQLHook("carto_b").get_access_token()
        assert a.is_alive()  # B had its token while A's fetch was still waiting
        a.join()
