"""The token cache's lock files (carto_provider.auth.cache._flock): exclusion, prompt hand-over, and
no lock left behind by a waiter that gave up. flock locks belong to an open file, so two opens in one
process exclude each other as two processes do (one test checks across processes)."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
import time

import pytest

from carto_provider.auth.cache._flock import acquire_exclusive, wait_released

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX only")

TRY_FROM_ANOTHER_PROCESS = (
    "import fcntl, os, sys; fcntl.flock(os.open(sys.argv[1], os.O_RDWR), fcntl.LOCK_EX | fcntl.LOCK_NB)"
)


def busy_for_another_process(path) -> bool:
    tried = subprocess.run([sys.executable, "-c", TRY_FROM_ANOTHER_PROCESS, str(path)], check=False)
    return tried.returncode != 0


def test_the_lock_excludes_other_processes_until_released_and_its_file_is_private(tmp_path):
    path = tmp_path / "k.lock"
    release = acquire_exclusive(path, 0)
    assert release is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert busy_for_another_process(path)
    assert acquire_exclusive(path, 0) is None  # one try, busy
    release()
    assert not busy_for_another_process(path)


def test_a_blocked_caller_gets_the_lock_once_the_holder_lets_go(tmp_path):
    path = tmp_path / "k.lock"
    release = acquire_exclusive(path, 0)
    assert release is not None
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(acquire_exclusive(path, 30)))
    waiter.start()
    time.sleep(0.2)
    assert not got  # still waiting while the holder holds it
    release()
    waiter.join(30)
    assert got and got[0] is not None
    assert busy_for_another_process(path)
    got[0]()


def test_a_caller_that_gave_up_leaves_no_lock_behind(tmp_path):
    """Taking the lock polls, so nothing keeps waiting for it after the caller gave up: the next
    taker finds it free the moment the holder lets go."""
    path = tmp_path / "k.lock"
    release = acquire_exclusive(path, 0)
    assert release is not None
    assert acquire_exclusive(path, 0.1) is None  # timed out
    release()
    again = acquire_exclusive(path, 0)
    assert again is not None
    again()


def test_every_waiter_for_the_release_wakes_together_and_none_creates_a_lock_file(tmp_path):
    wait_released(tmp_path / "absent.lock", 30)  # nobody holds it: returns at once
    assert not (tmp_path / "absent.lock").exists()
    path = tmp_path / "k.lock"
    release = acquire_exclusive(path, 0)
    assert release is not None
    waiters = [threading.Thread(target=wait_released, args=(path, 30)) for _ in range(8)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.2)
    assert all(w.is_alive() for w in waiters)
    release()
    for waiter in waiters:
        waiter.join(30)
    assert not any(w.is_alive() for w in waiters)
    assert not busy_for_another_process(path)  # their shared locks are gone too
