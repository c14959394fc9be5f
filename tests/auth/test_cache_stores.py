"""Every token store keeps the same contract, and the one refresh policy works over each of them.

The stores are real: a private file in a temporary directory, memory, a real ``redis-server``
(Debian's) with this machine's file store as fallback, and the same Redis store pointed at a port
nothing listens on (it must then behave as its fallback alone). "Another process" holding a lock is
another store object on the same file or Redis: their locks exclude each other as separate processes'.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from carto_provider.auth.cache.file import FileStore
from carto_provider.auth.cache.policy import TokenCache
from carto_provider.auth.cache.stores import EMPTY, CacheKey, MemoryStore, TokenStore
from carto_provider.auth.tokens import AccessToken
from carto_provider.errors import CredentialsError

KINDS = ["file", "memory", "redis", "redis-unreachable"]
SECRET = "store-contract-secret-0123456789"
HAS_REDIS = shutil.which("redis-server") is not None


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if not HAS_REDIS:
        if os.environ.get("CI"):
            raise RuntimeError("redis-server is missing; run `make system-deps`")
        pytest.skip("redis-server is not installed (make system-deps)")
    from carto_provider.testing.redis_server import RedisServer

    with RedisServer(password="store-contract-pass") as server:
        yield server.url


StoreFactory = Callable[..., TokenStore]


@pytest.fixture(params=KINDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Builds stores of one kind; each call is another process's view of the same storage
    (``machine`` names another machine's local file for the Redis stores)."""
    kind = request.param
    if kind == "memory":
        single = MemoryStore()  # memory is one object's: its "other views" are itself
        return lambda machine="a", lock_timeout=0.5: single
    if kind == "file":
        return lambda machine="a", lock_timeout=0.5: FileStore(tmp_path / "t.json", lock_timeout=lock_timeout)
    from carto_provider.testing.redis_server import free_port

    if kind == "redis":
        url = fresh_redis(request.getfixturevalue("redis_url"))
    else:
        url = f"redis://127.0.0.1:{free_port()}/0"
    return lambda machine="a", lock_timeout=0.5: redis_store(url, tmp_path / machine, lock_timeout)


def fresh_redis(url: str) -> str:
    import redis

    redis.Redis.from_url(url).flushall()
    return url


def redis_store(url: str, machine: Path, lock_timeout: float = 0.5) -> Any:
    """A Redis store as one machine sees it: its own local file store as fallback."""
    from carto_provider.auth.cache.redis import RedisStore

    local = FileStore(machine / "t.json", lock_timeout=lock_timeout)
    return RedisStore(url, SECRET, fallback=local, lock_timeout=lock_timeout)


def kind_of(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["make_store"])


def token(value: str, lifetime: float = 3600.0) -> AccessToken:
    now = time.time()
    return AccessToken(value, now + lifetime, now)


KEY = CacheKey.of("contract", client_id="one")
OTHER = CacheKey.of("contract", client_id="two")


# --------------------------------------------------------------------------- the store contract


def test_an_unknown_key_reads_as_empty(make_store: StoreFactory) -> None:
    assert make_store().read(KEY) == EMPTY


def test_a_written_token_is_read_back_by_another_view_under_its_key_only(make_store: StoreFactory) -> None:
    store = make_store()
    with store.lock(KEY, blocking=True):
        store.write(KEY, token("tok-one"))
    entry = make_store().read(KEY)
    assert entry.token is not None and entry.token.value == "tok-one"
    assert entry.failed_at == 0.0
    assert make_store().read(OTHER).token is None


def test_an_advisory_attempt_is_recorded_with_the_token(make_store: StoreFactory) -> None:
    store = make_store()
    attempted = time.time()
    store.write(KEY, token("tok-one"), last_attempt=attempted)
    assert make_store().read(KEY).last_attempt >= attempted


def test_a_failure_is_recorded_for_the_waiters_and_keeps_the_token(make_store: StoreFactory) -> None:
    store = make_store()
    store.write(KEY, token("tok-one"))
    store.record_failure(KEY, 1234.5, "HTTP 503 from the auth server")
    entry = make_store().read(KEY)
    assert (entry.failed_at, entry.failure) == (1234.5, "HTTP 503 from the auth server")
    assert entry.token is not None and entry.token.value == "tok-one"


def test_delete_removes_the_entry_once(make_store: StoreFactory) -> None:
    store = make_store()
    store.write(KEY, token("tok-one"))
    store.write(OTHER, token("tok-two"))
    assert store.delete(KEY) is True
    assert make_store().read(KEY).token is None
    assert store.delete(KEY) is False
    assert make_store().read(OTHER).token is not None


def test_the_lock_excludes_other_processes_and_a_stuck_holder_delays_by_a_bounded_time(
    make_store: StoreFactory, request: pytest.FixtureRequest
) -> None:
    kind = kind_of(request)
    holder, waiter = make_store(), make_store("b", lock_timeout=0.3)
    with holder.lock(KEY, blocking=True) as held:
        assert held is (None if kind == "memory" else True)
        with waiter.lock(KEY, blocking=False) as busy:
            # nothing to lock in memory; an unreachable Redis leaves machines a and b unlocked too
            expected = {"memory": None, "redis-unreachable": True}.get(kind, False)
            assert busy is expected
        started = time.monotonic()
        with waiter.lock(KEY, blocking=True) as timed_out:
            if kind in ("file", "redis"):
                assert timed_out is False
        assert time.monotonic() - started < 10  # bounded, whatever the machine's load
    with waiter.lock(KEY, blocking=False) as free:
        assert free is not False


# --------------------------------------------------------------------------- the policy over each store


def test_the_policy_fetches_once_for_many_threads_and_serves_from_memory(make_store: StoreFactory) -> None:
    cache = TokenCache(make_store())
    fetched: list[int] = []

    def fetch() -> AccessToken:
        time.sleep(0.1)
        fetched.append(1)
        return token(f"tok-{len(fetched)}")

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(KEY, fetch).value)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == ["tok-1"] * 8 and fetched == [1]
    assert TokenCache(make_store()).get(KEY, fetch).value == "tok-1"
    assert cache.peek(KEY) is not None and cache.clear(KEY) is True


def test_the_policy_replaces_a_rejected_token_once(make_store: StoreFactory) -> None:
    first, second = TokenCache(make_store()), TokenCache(make_store())
    values = iter(["old", "new", "newer"])

    def fetch() -> AccessToken:
        return token(next(values))

    assert first.get(KEY, fetch).value == "old"
    assert first.get(KEY, fetch, rejected="old").value == "new"
    assert second.get(KEY, fetch, rejected="old").value == "new"  # compare-and-swap: not fetched again


def test_a_failure_while_others_waited_is_raised_in_them(
    make_store: StoreFactory, request: pytest.FixtureRequest
) -> None:
    kind = kind_of(request)
    if kind == "memory":
        pytest.skip("a memory store is one object's: nobody else waits on it")
    # With Redis up, the waiter is another machine: only Redis links the two.
    waiter_machine = "b" if kind == "redis" else "a"
    holder, waiter = TokenCache(make_store()), TokenCache(make_store(waiter_machine, lock_timeout=30.0))
    calls: list[str] = []
    started = threading.Event()

    def failing() -> AccessToken:
        calls.append("holder")
        started.set()
        time.sleep(0.3)
        raise CredentialsError("HTTP 503 from the auth server")

    def never() -> AccessToken:
        calls.append("waiter")
        raise AssertionError("the waiter must not fetch")

    errors: list[BaseException] = []

    def run(cache: TokenCache, fetch: Callable[[], AccessToken]) -> None:
        try:
            cache.get(KEY, fetch)
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=run, args=(holder, failing))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=run, args=(waiter, never))
    second.start()
    for thread in (first, second):
        thread.join(timeout=30)
    assert calls == ["holder"]
    assert len(errors) == 2 and all("HTTP 503" in str(e) for e in errors)


def test_stores_share_the_in_process_layer_only_for_the_same_storage(
    make_store: StoreFactory, request: pytest.FixtureRequest
) -> None:
    kind = kind_of(request)
    one, again, elsewhere = make_store(), make_store(), make_store("b")
    if kind == "memory":
        assert one.namespace is None
        return
    assert one.namespace is not None and one.namespace == again.namespace
    if kind.startswith("redis"):
        assert one.namespace != elsewhere.namespace  # another machine's local file


def test_the_redis_store_copies_a_fleet_token_to_this_machine(redis_url: str, tmp_path: Path) -> None:
    url = fresh_redis(redis_url)
    redis_store(url, tmp_path / "a").write(KEY, token("fleet-token"))
    machine_b = redis_store(url, tmp_path / "b")
    assert machine_b.read(KEY).token.value == "fleet-token"
    assert machine_b.fallback.read(KEY).token.value == "fleet-token"
    assert machine_b.read(KEY).last_attempt > 0  # Redis's write time counts as a recent attempt


HOLDER = """
import sys, time
from pathlib import Path
from carto_provider.auth.cache.stores import CacheKey
from carto_provider.auth.cache.file import FileStore
from carto_provider.auth.cache.redis import RedisStore
url, secret, directory = sys.argv[1:4]
store = RedisStore(url, secret, fallback=FileStore(Path(directory) / "t.json", lock_timeout=5), lock_lease=0.6)
with store.lock(CacheKey.of("contract", client_id="one"), blocking=True) as held:
    print("locked" if held else "not locked", flush=True)
    time.sleep(120)
"""


def test_a_live_holder_keeps_the_redis_lock_and_a_dead_ones_lease_runs_out(
    redis_url: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    url = fresh_redis(redis_url)
    repo = Path(__file__).resolve().parents[2]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, SECRET, str(tmp_path / "a")],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        time.sleep(1.5)  # more than two leases of 0.6 s: only renewal keeps the lock
        waiter = redis_store(url, tmp_path / "b", lock_timeout=10.0)
        with waiter.lock(KEY, blocking=False) as busy:
            assert busy is False
        holder.kill()  # SIGKILL: no release, no more renewals
        holder.wait()
        with waiter.lock(KEY, blocking=True) as taken_over:
            assert taken_over is True  # the lease ran out well within the 10 s wait
    finally:
        holder.kill()
        holder.wait()


def test_a_waiter_reads_what_the_lock_holder_wrote_without_queueing_for_the_lock(
    make_store: StoreFactory, request: pytest.FixtureRequest
) -> None:
    """Issue 23: a cold burst's waiters wake when the holder releases the file lock and read once."""
    if kind_of(request) in ("memory", "redis"):
        pytest.skip("file locks only: Redis sends no release notice, memory has nobody to wait for")
    holder, waiter_store = make_store(), make_store(lock_timeout=30.0)
    blocking_locks: list[bool] = []
    real_lock = waiter_store.lock

    def recording_lock(key: CacheKey, *, blocking: bool) -> Any:
        blocking_locks.append(blocking)
        return real_lock(key, blocking=blocking)

    waiter_store.lock = recording_lock  # type: ignore[method-assign]
    held, written = threading.Event(), threading.Event()

    def hold_then_write() -> None:
        with holder.lock(KEY, blocking=True):
            held.set()
            time.sleep(0.3)
            holder.write(KEY, token("landed"))
            written.set()

    thread = threading.Thread(target=hold_then_write)
    thread.start()
    assert held.wait(10)

    def never() -> AccessToken:
        raise AssertionError("the waiter must not fetch")

    got = TokenCache(waiter_store).get(KEY, never)
    assert written.is_set() and got.value == "landed"
    assert True not in blocking_locks  # it never queued for the lock
    thread.join(10)
