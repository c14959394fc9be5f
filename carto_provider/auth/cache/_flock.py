"""Cross-process locks on a lock file, with waits that end the moment the holder lets go.

``flock`` on POSIX: a blocked ``flock`` call is woken by the kernel when the lock is released, so a
waiter learns of a new token at once, where ``filelock`` retries every 50 ms, and a thousand waiters
cost nothing while they wait. A blocking call cannot time out by itself, so it runs in a helper thread;
a caller that stops waiting (a stuck holder) leaves the thread to release the lock as soon as it is
granted. On Windows (no ``flock``) ``filelock`` does the same with its polling.
"""

from __future__ import annotations

import os
import sys
import threading
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
        if timeout <= 0 or not _wait_for(fd, fcntl.LOCK_EX, timeout):
            return None  # the fd is closed: by us, or by the helper thread once it gets the lock
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
