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
        if not _poll_exclusive(fd, timeout):
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
        _wait_for_shared(fd, timeout)
        return
    except OSError:
        pass
    os.close(fd)


def _poll_exclusive(fd: int, timeout: float) -> bool:
    """Try ``flock(fd, LOCK_EX)`` until it is granted (True) or ``timeout`` passes (False)."""
    import fcntl

    deadline, pause = time.monotonic() + timeout, 0.001
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            continue
    return False


def _wait_for_shared(fd: int, timeout: float) -> None:
    """Block in a helper thread until a shared lock on ``fd`` is granted, or ``timeout`` passes.
    The thread closes ``fd`` (dropping the lock) once granted, also after the caller stopped waiting."""
    import fcntl

    granted = threading.Event()

    def block() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError:
            pass
        finally:
            os.close(fd)
            granted.set()

    threading.Thread(target=block, name="carto-token-cache-wait", daemon=True).start()
    granted.wait(timeout)


def _acquire_with_filelock(path: Path, timeout: float) -> Release | None:  # pragma: no cover
    import filelock

    lock = filelock.FileLock(path, timeout=timeout, mode=0o600, preserve_lock_file=True, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        return None
    return lock.release
