"""Cross-process locks on a lock file: ``flock`` on POSIX, ``filelock`` on Windows (no ``flock``).

Waiting for another process's token fetch (:func:`wait_released`) ends the moment the holder lets
go: a blocked ``flock`` is woken by the kernel, for every waiter at once, where ``filelock`` retries
every 50 ms. A blocking call cannot time out by itself, so it runs in a helper thread; a caller that
stops waiting (a stuck holder) leaves the thread to drop the shared lock as soon as it is granted.
Taking the lock (:func:`acquire_exclusive`) polls instead, from 1 ms up to every 50 ms: a helper
thread still blocked for a caller that gave up would take the lock when it frees, and hold it from
the next taker for an instant. Fetches hold it; waiters of a fetch only wait for its release.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: Releases a lock taken by :func:`acquire_exclusive`.
Release = Callable[[], None]

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def acquire_exclusive(path: Path, timeout: float) -> Release | None:
    """Lock ``path`` (created 0600 if absent) for this process alone, waiting at most ``timeout``
    seconds (0: one try). The release function, or None when the lock stayed busy. Raises
    :class:`OSError` when the lock file cannot be opened or created."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        return _acquire_with_filelock(path, timeout)
    import fcntl

    fd = os.open(path, _OPEN_FLAGS | os.O_NONBLOCK, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if not _poll_for(fd, fcntl.LOCK_EX, timeout):
            os.close(fd)
            return None
    except BaseException:
        os.close(fd)
        raise
    return lambda: os.close(fd)  # closing the descriptor releases the lock


def wait_released(path: Path, timeout: float) -> None:
    """Return once nobody holds ``path``'s exclusive lock, or after ``timeout`` seconds. Takes a
    shared lock for an instant: every waiter is granted it together when the holder lets go."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        release = _acquire_with_filelock(path, timeout)
        if release is not None:
            release()
        return
    import fcntl

    try:  # read-only, never created: no lock file means nobody holds it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        if _wait_for(fd, fcntl.LOCK_SH, timeout):
            os.close(fd)
        return
    except OSError:
        pass
    os.close(fd)


def _poll_for(fd: int, operation: int, timeout: float) -> bool:
    """Try ``flock(fd, operation)`` until it is granted (True) or ``timeout`` passes (False)."""
    import fcntl

    deadline, pause = time.monotonic() + timeout, 0.001
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            continue
    return False


def _wait_for(fd: int, operation: int, timeout: float) -> bool:
    """Block in a helper thread until ``flock(fd, operation)`` is granted (True: the caller owns
    ``fd``) or ``timeout`` passes (False: ``fd`` is closed now or, once granted, by the thread)."""
    import fcntl

    done = threading.Event()
    guard = threading.Lock()
    outcome = {"granted": False, "abandoned": False}

    def block() -> None:
        try:
            fcntl.flock(fd, operation)
            granted = True
        except OSError:
            granted = False
        with guard:
            outcome["granted"] = granted and not outcome["abandoned"]
            if not outcome["granted"]:
                os.close(fd)
        done.set()

    threading.Thread(target=block, name="carto-token-cache-lock", daemon=True).start()
    done.wait(timeout)
    with guard:
        outcome["abandoned"] = True
        return outcome["granted"]


def _acquire_with_filelock(path: Path, timeout: float) -> Release | None:  # pragma: no cover
    import filelock

    lock = filelock.FileLock(path, timeout=timeout, mode=0o600, preserve_lock_file=True, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        return None
    return lock.release
