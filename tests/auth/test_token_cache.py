"""The shared token cache: single flight across processes and threads, privacy, atomicity, recovery.

Integration tests use real processes, real files and the emulator over HTTP. The refresh-window logic
is unit-tested with a fake clock and a fake fetcher (no network).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from carto_provider.auth.cache.file import CACHE_FORMAT
from carto_provider.auth.cache.policy import TokenCache
from carto_provider.auth.cache.stores import CacheKey
from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.tokens import AccessToken
from carto_provider.errors import CredentialsError
from tests.helpers import run_burst, write_credentials


def make_auth(emulator, cache: Path | None, **kwargs) -> CartoAuth:
    return CartoAuth.from_values(
        emulator.url,
        emulator.client_id,
        emulator.client_secret,
        auth_url=emulator.url,
        cache_filepath=cache,
        **kwargs,
    )


def cache_entries(path: Path) -> dict:
    doc = json.loads(path.read_text())
    assert doc["format"] == CACHE_FORMAT
    return doc["entries"]


# --------------------------------------------------------------------------- single flight


@pytest.mark.parametrize("n", [64])
def test_cold_burst_of_processes_makes_exactly_one_token_request(carto_emulator, tmp_path, n):
    carto_emulator.set_latency("POST /oauth/token", 0.15)  # a real round trip widens the race
    credentials = write_credentials(tmp_path / "creds.json", carto_emulator)
    results = run_burst(n, credentials, tmp_path / "cache" / "token_m2m.json")
    assert carto_emulator.token_requests() == 1
    assert len({r["fp"] for r in results}) == 1
    assert len(results) == n


def test_expiring_burst_of_processes_makes_exactly_one_token_request(carto_emulator, tmp_path):
    credentials = write_credentials(tmp_path / "creds.json", carto_emulator)
    cache = tmp_path / "token_m2m.json"
    auth = CartoAuth.from_m2m(credentials, cache_filepath=cache)
    old = auth.get_access_token()
    # Age the cached token into its mandatory refresh margin (2 minutes left of 24 h).
    doc = json.loads(cache.read_text())
    for entry in doc["entries"].values():
        entry["expires_at"] = time.time() + 120
        entry["obtained_at"] = entry["expires_at"] - 86400
    cache.write_text(json.dumps(doc))
    os.chmod(cache, 0o600)
    carto_emulator.set_latency("POST /oauth/token", 0.15)
    results = run_burst(32, credentials, cache)
    assert carto_emulator.token_requests() == 2  # the first one, then exactly one refresh
    fingerprints = {r["fp"] for r in results}
    assert len(fingerprints) == 1
    assert AccessToken(old, 0, 0).fingerprint not in fingerprints


def test_warm_burst_makes_no_request_and_never_rewrites_the_file(carto_emulator, tmp_path):
    credentials = write_credentials(tmp_path / "creds.json", carto_emulator)
    cache = tmp_path / "token_m2m.json"
    CartoAuth.from_m2m(credentials, cache_filepath=cache).get_access_token()
    before = cache.stat()
    results = run_burst(64, credentials, cache)
    after = cache.stat()
    assert carto_emulator.token_requests() == 1
    assert len({r["fp"] for r in results}) == 1
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)


def test_32_threads_make_one_request(carto_emulator, tmp_path):
    carto_emulator.set_latency("POST /oauth/token", 0.2)
    auth = make_auth(carto_emulator, tmp_path / "t.json")
    barrier = threading.Barrier(32)
    tokens: list[str] = []

    def worker() -> None:
        barrier.wait()
        tokens.append(auth.get_access_token())

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(tokens) == 32 and len(set(tokens)) == 1
    assert carto_emulator.token_requests() == 1


def test_processes_rejected_by_the_api_replace_the_token_once(carto_emulator, tmp_path):
    """Behaviour 15: many processes hit 401 with the same token -> one new token, each call retried once."""
    credentials = write_credentials(tmp_path / "creds.json", carto_emulator)
    cache = tmp_path / "token_m2m.json"
    stale = CartoAuth.from_m2m(credentials, cache_filepath=cache).get_access_token()
    carto_emulator.revoke(stale)
    n = 16
    run_burst(n, credentials, cache, extra_args=("dw",))
    assert carto_emulator.token_requests() == 2  # the stale one, then exactly one replacement
    assert carto_emulator.events("dw_token") == n  # every process succeeded
    # each process was refused at most once (those that read the cache after the refresh never were)
    assert n < carto_emulator.calls("GET /v3/connections/carto-dw/token") <= 2 * n


# --------------------------------------------------------------------------- keys and privacy


def test_two_clients_sharing_one_file_never_see_each_others_token(carto_emulator, tmp_path):
    carto_emulator.add_client("second-client", "second-secret-abcdef")
    cache = tmp_path / "shared.json"
    first = make_auth(carto_emulator, cache).get_access_token()
    second = CartoAuth.from_values(
        carto_emulator.url,
        "second-client",
        "second-secret-abcdef",
        auth_url=carto_emulator.url,
        cache_filepath=cache,
    ).get_access_token()
    assert first != second
    assert carto_emulator.token_requests("emulator-client-id") == 1
    assert carto_emulator.token_requests("second-client") == 1
    assert len(cache_entries(cache)) == 2
    # and each is served its own from the file afterwards
    again = make_auth(carto_emulator, cache).get_access_token()
    assert again == first and carto_emulator.token_requests() == 2


def test_a_changed_secret_is_not_served_the_old_secrets_token(carto_emulator, tmp_path):
    cache = tmp_path / "t.json"
    make_auth(carto_emulator, cache).get_access_token()
    wrong = CartoAuth.from_values(
        carto_emulator.url,
        carto_emulator.client_id,
        "not-the-secret",
        auth_url=carto_emulator.url,
        cache_filepath=cache,
    )
    with pytest.raises(CredentialsError):
        wrong.get_access_token()


def test_files_are_private_whatever_the_umask(carto_emulator, tmp_path):
    script = textwrap.dedent(
        f"""
        import os
        os.umask(0)
        from carto_provider.auth.carto_auth import CartoAuth
        CartoAuth.from_values({carto_emulator.url!r}, {carto_emulator.client_id!r},
            {carto_emulator.client_secret!r}, auth_url={carto_emulator.url!r},
            cache_filepath={str(tmp_path / "dir" / "sub" / "t.json")!r}).get_access_token()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    assert stat.S_IMODE((tmp_path / "dir" / "sub").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "dir" / "sub" / "t.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "dir" / "sub" / "t.json.lock").stat().st_mode) == 0o600
    assert not [p for p in (tmp_path / "dir" / "sub").iterdir() if p.name.endswith(".tmp")]


def test_an_insecure_cache_file_is_not_trusted_and_is_replaced(carto_emulator, tmp_path, caplog):
    cache = tmp_path / "t.json"
    first = make_auth(carto_emulator, cache).get_access_token()
    os.chmod(cache, 0o644)
    fresh_process_view = TokenCache(cache)
    with caplog.at_level(logging.WARNING):
        key = make_auth(carto_emulator, cache).cache_key
        assert fresh_process_view.storage.read(key).token is None
    assert "readable by others" in caplog.text
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from tests.token_worker import main; import sys; sys.exit(main())",
            str(write_credentials(tmp_path / "c.json", carto_emulator)),
            str(cache),
            "0",
        ],
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert carto_emulator.token_requests() == 2
    assert first


def test_a_directory_readable_by_others_is_made_private(carto_emulator, tmp_path, caplog):
    directory = tmp_path / "shared-dir"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    with caplog.at_level(logging.WARNING):
        make_auth(carto_emulator, directory / "t.json").get_access_token()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert "set it to 0700" in caplog.text


# --------------------------------------------------------------------------- damage and fallbacks


@pytest.mark.parametrize(
    "content, kind",
    [
        (b'{"entries": {"x": ', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        # carto-auth's own format in the same place: foreign, never parsed as ours
        (b'{"access_token": "abc", "expiration": 99999999999, "api_base_url": "x"}', "not a carto-provider"),
    ],
)
def test_a_corrupt_or_foreign_file_is_a_miss_with_one_warning_and_is_kept(
    carto_emulator, tmp_path, caplog, content, kind
):
    cache = tmp_path / "t.json"
    cache.write_bytes(content)
    os.chmod(cache, 0o600)
    with caplog.at_level(logging.WARNING, logger="carto_provider"):
        token = make_auth(carto_emulator, cache).get_access_token()
        assert make_auth(carto_emulator, cache).get_access_token() == token
    assert carto_emulator.token_requests() == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and kind in warnings[0].getMessage()
    # Never overwritten, renamed or deleted (it may be carto-auth's): issue 12, coexistence.
    assert cache.read_bytes() == content
    # Only lock files beside it (the file's, and one per cache key).
    assert not [p for p in tmp_path.iterdir() if p.name != "t.json" and not p.name.endswith(".lock")]


def test_an_unwritable_cache_directory_falls_back_to_memory_with_one_warning(
    carto_emulator, tmp_path, caplog
):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("I am a file, so nothing can be created below me")
    cache = not_a_dir / "cache" / "t.json"
    with caplog.at_level(logging.WARNING, logger="carto_provider"):
        auth = make_auth(carto_emulator, cache)
        token = auth.get_access_token()
        assert auth.get_access_token() == token
        assert make_auth(carto_emulator, cache).get_access_token() == token  # shared in-process
    assert carto_emulator.token_requests() == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "falls back to memory" in warnings[0]


def test_read_only_home_uses_memory(carto_emulator, tmp_path, monkeypatch, caplog):
    """The default location under HOME, with HOME somewhere nothing can be created (/proc)."""
    monkeypatch.setenv("HOME", "/proc/carto-provider-no-such-home")
    with caplog.at_level(logging.WARNING, logger="carto_provider"):
        token = make_auth(carto_emulator, None).get_access_token()
    assert token and carto_emulator.token_requests() == 1
    assert "falls back to memory" in caplog.text


def test_use_cache_false_keeps_tokens_in_the_object_only(carto_emulator, tmp_path):
    credentials = write_credentials(tmp_path / "creds.json", carto_emulator)
    a = CartoAuth.from_m2m(credentials, use_cache=False)
    assert a.get_access_token() == a.get_access_token()
    CartoAuth.from_m2m(credentials, use_cache=False).get_access_token()
    assert carto_emulator.token_requests() == 2
    assert not (Path.home() / ".carto-auth").exists()


def test_default_cache_is_its_own_not_carto_auths(carto_emulator, tmp_path):
    credentials = write_credentials(tmp_path / "creds.json", carto_emulator)
    CartoAuth.from_m2m(credentials).get_access_token()
    path = Path.home() / ".carto-provider" / "token_m2m.json"
    assert not (Path.home() / ".carto-auth").exists()
    assert cache_entries(path)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_stuck_lock_holder_delays_others_by_a_bounded_time(carto_emulator, tmp_path, caplog):
    cache = tmp_path / "t.json"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(cache) + ".lock",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        auth = make_auth(carto_emulator, cache, lock_timeout=1.0)
        with caplog.at_level(logging.WARNING, logger="carto_provider"):
            token = auth.get_access_token()
        assert token and carto_emulator.token_requests() == 1
        assert "held by a stuck process" in caplog.text
        assert cache_entries(cache)  # written anyway, atomically
    finally:
        holder.kill()
        holder.wait()


def test_expiry_is_epoch_based_and_agrees_across_time_zones(carto_emulator, tmp_path):
    credentials = write_credentials(tmp_path / "creds.json", carto_emulator)
    cache = tmp_path / "t.json"
    before = time.time()
    CartoAuth.from_m2m(credentials, cache_filepath=cache).get_access_token()
    (entry,) = cache_entries(cache).values()
    assert before - 1 <= entry["obtained_at"] <= time.time()
    assert entry["expires_at"] == pytest.approx(entry["obtained_at"] + 86400, abs=2)
    for tz in ("UTC", "America/New_York", "Asia/Tokyo"):
        run_burst(1, credentials, cache, env={"TZ": tz})
    assert carto_emulator.token_requests() == 1


def test_short_lived_tokens_cause_no_refresh_storm(tmp_path):
    from carto_provider.testing import CartoEmulator

    with CartoEmulator(token_lifetime=2) as carto:
        auth = make_auth(carto, tmp_path / "t.json")
        deadline = time.monotonic() + 3.0
        calls = 0
        while time.monotonic() < deadline:
            auth.get_access_token()
            calls += 1
        # a 2 s token is refreshed at most every ~1.5 s however hard it is asked for
        assert calls > 100
        assert 2 <= carto.token_requests() <= 4


# --------------------------------------------------------------------------- refresh windows (unit)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    import carto_provider.auth.cache.policy as cache_module

    fake = FakeClock(1_000_000.0)
    monkeypatch.setattr(cache_module, "time", fake)
    return fake


def test_advisory_window_keeps_the_current_token_when_refresh_fails(tmp_path, clock, caplog):
    cache = TokenCache(tmp_path / "t.json")
    key = CacheKey.of("unit", client="c")
    lifetime = 3600.0
    attempts: list[float] = []

    def fetch_ok() -> AccessToken:
        attempts.append(clock.now)
        return AccessToken(f"tok-{len(attempts)}", clock.now + lifetime, clock.now)

    first = cache.get(key, fetch_ok)
    assert first.value == "tok-1"

    def fetch_fail() -> AccessToken:
        attempts.append(clock.now)
        raise CredentialsError("HTTP 503")

    # advisory window starts min(30 min, lifetime/2) = 30 min before expiry
    clock.now += lifetime - 1700
    with caplog.at_level(logging.WARNING, logger="carto_provider"):
        assert cache.get(key, fetch_fail).value == "tok-1"
    assert "keeping the current one" in caplog.text
    assert len(attempts) == 2
    # at most one attempt per 30 s, even from another TokenCache object (state is on disk)
    clock.now += 10
    assert TokenCache(tmp_path / "t.json").get(key, fetch_fail).value == "tok-1"
    assert len(attempts) == 2
    clock.now += 30
    assert cache.get(key, fetch_fail).value == "tok-1"
    assert len(attempts) == 3
    # in the mandatory margin (5 min) a failure is an error
    clock.now = first.expires_at - 200
    with pytest.raises(CredentialsError):
        cache.get(key, fetch_fail)
    # and a working endpoint gives a new token
    assert cache.get(key, fetch_ok).value == "tok-5"


def test_margins_scale_down_for_short_lifetimes():
    token = AccessToken("t", expires_at=1120.0, obtained_at=1000.0)  # 120 s lifetime
    assert token.mandatory_margin == 30 and token.advisory_window == 60
    day = AccessToken("t", expires_at=86400.0, obtained_at=0.0)
    assert day.mandatory_margin == 300 and day.advisory_window == 1800
    assert day.usable(86400 - 301) and not day.usable(86400 - 299)
    assert day.fresh(86400 - 1801) and not day.fresh(86400 - 1799)


def test_min_ttl_forces_a_refresh_when_too_little_time_is_left(tmp_path, clock):
    cache = TokenCache(tmp_path / "t.json")
    key = CacheKey.of("unit", client="c")
    made: list[str] = []

    def fetch() -> AccessToken:
        made.append("x")
        return AccessToken(f"tok-{len(made)}", clock.now + 7200, clock.now)

    cache.get(key, fetch)
    clock.now += 7200 - 2000  # 33 min left: fine by default...
    assert cache.get(key, fetch, min_ttl=600).value == "tok-1"
    assert cache.get(key, fetch, min_ttl=3600).value == "tok-2"  # ...but not for a one-hour job


def test_jwt_exp_earlier_than_expires_in_wins():
    import base64

    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1500}).encode()).rstrip(b"=").decode()
    token = AccessToken.from_token_response(
        {"access_token": f"h.{payload}.s", "expires_in": 86400}, requested_at=1000.0
    )
    assert token.expires_at == 1500.0
    later = AccessToken.from_token_response({"access_token": "opaque", "expires_in": 60}, requested_at=1000.0)
    assert later.expires_at == 1060.0


def test_repr_never_shows_the_token(tmp_path):
    token = AccessToken("very-secret-token-value", 2.0, 1.0)
    assert "very-secret-token-value" not in repr(token)
    assert token.fingerprint in repr(token)
