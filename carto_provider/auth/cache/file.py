"""The file store under :class:`~.cache.TokenCache`: one private JSON file shared by the processes of a user.

One JSON file holds many entries, each under its :class:`~.cache.CacheKey`'s id, so two clients never
see each other's token even through the same file. A hit never rewrites the file.

The directory is 0700 and the file 0600 from birth whatever the umask; writes go to a temporary file
that replaces the old one atomically, so readers never see half a file and never lock; the lock is a
sibling ``.lock`` file that is never deleted. Anything that cannot be used safely turns the cache into
an in-memory one, with one WARNING: a file this package did not write (``carto-auth``'s format,
invalid JSON) anywhere else than the provider's own directory ``~/.carto-provider`` (never overwritten,
renamed or deleted: it may be carto-auth's), a FIFO, directory or device at the cache or lock
path (never opened in a way that blocks), a directory that is not ours or not writable. One malformed
entry is a miss for its key only. In the provider's own directory, such a file (damaged, or an older
format) is set aside instead, under the lock, at the next write: renamed to ``<name>.damaged-<time>``,
made private, and replaced by a new cache, with one WARNING; the cache keeps working.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carto_provider.auth.cache import _flock
from carto_provider.auth.cache.stores import EMPTY, StoredEntry
from carto_provider.auth.settings import DEFAULT_CACHE_DIR
from carto_provider.auth.tokens import AccessToken

if TYPE_CHECKING:
    from carto_provider.auth.cache.stores import CacheKey

log = logging.getLogger(__name__)

CACHE_FORMAT = "carto-provider-token-cache"
CACHE_VERSION = 1
#: A cache file is a few KiB; a larger one is not ours.
MAX_CACHE_FILE_BYTES = 1024 * 1024
#: Entries that expired longer ago than this are dropped when the file is next written.
EXPIRED_ENTRY_GRACE = 3600.0
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs"})

_WARNED: set[tuple[str, ...]] = set()
_WARNED_LOCK = threading.Lock()


def _warn_once(key: tuple[str, ...], message: str, *args: Any) -> None:
    with _WARNED_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    log.warning(message, *args)


@dataclass
class _FileRead:
    entries: dict[str, Any]
    ours: bool = True  # False: a file this package did not write (carto-auth's...): never replaced
    #: The file read, when it is not ours: (inode, mtime) to set it aside only if it is still the same.
    foreign: tuple[int, int] | None = None


class FileStore:
    """A :class:`~.stores.TokenStore` in one private JSON file (``path``), locked through a sibling
    ``.lock`` file for at most ``lock_timeout`` seconds; entries are read as ``token_class``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout: float,
        token_class: type[AccessToken] = AccessToken,
    ) -> None:
        self.path = Path(path).expanduser().absolute()
        self.lock_timeout = lock_timeout
        self.token_class = token_class
        #: Every cache on this file shares one in-process memory layer.
        self.namespace: str | None = str(self.path)
        #: In the provider's own directory a file that is not a cache of ours is set aside, not kept.
        self.own_location = self.path.parent == Path(DEFAULT_CACHE_DIR).expanduser().absolute()
        self._disk = True
        self._dir_checked = False

    def __repr__(self) -> str:
        return f"FileStore(path={str(self.path)!r}, on_disk={self._disk})"

    # ------------------------------------------------------------------ the TokenStore contract

    def read(self, key: CacheKey) -> StoredEntry:
        """The entry for ``key``, lock-free; a malformed one reads as a token-less entry."""
        entry = self._read_file().entries.get(key.id)
        if not isinstance(entry, Mapping):
            return EMPTY
        return StoredEntry(
            self.token_class.from_dict(entry),
            last_attempt=_number(entry.get("last_attempt")),
            failed_at=_number(entry.get("failed_at")),
            failure=str(entry.get("failure") or ""),
        )

    def write(self, key: CacheKey, token: AccessToken, *, last_attempt: float | None = None) -> None:
        """Write ``token`` under ``key`` (the caller holds the file lock, or it timed out)."""
        entry: dict[str, Any] = token.to_dict()
        entry["label"] = key.label
        if last_attempt is not None:
            entry["last_attempt"] = last_attempt
        self._update(key, entry)

    def record_failure(self, key: CacheKey, when: float, message: str) -> None:
        """Add the failure to ``key``'s entry, keeping its token."""
        if not self._ready_for_disk():
            return
        previous = self._read_file().entries.get(key.id)
        entry = dict(previous) if isinstance(previous, Mapping) else {}
        self._update(key, {**entry, "label": key.label, "failed_at": when, "failure": message[:1000]})

    def delete(self, key: CacheKey) -> bool:
        """Remove ``key``'s entry under the file lock (``logout``)."""
        if not self._ready_for_disk():
            return False
        with self._file_lock(blocking=True) as locked:
            if locked is None:
                return False
            read = self._read_file()
            if not (read.ours and key.id in read.entries):
                return False
            entries = dict(read.entries)
            del entries[key.id]
            self._write_file(entries)
            return True

    def lock(self, key: CacheKey, *, blocking: bool) -> contextlib.AbstractContextManager[bool | None]:
        """``key``'s lock, held for a whole fetch: one connection's slow token fetch does not hold up
        another's. Rewriting the file takes the file's own lock, briefly (:meth:`_update`)."""
        return self._file_lock(blocking=blocking, path=self._key_lock_path(key))

    def _key_lock_path(self, key: CacheKey) -> Path:
        return self.path.with_name(f"{self.path.name}.{key.id[:16]}.lock")

    def wait_released(self, key: CacheKey, *, timeout: float) -> None:
        """Wait for ``key``'s lock to be released: every waiter wakes the moment the holder lets go."""
        if self._ready_for_disk():
            _flock.wait_released(self._key_lock_path(key), timeout)

    # ------------------------------------------------------------------ the file

    @property
    def lock_path(self) -> Path:
        """The sibling lock file (kept, never deleted, so every process locks the same inode)."""
        return self.path.with_name(self.path.name + ".lock")

    def _ready_for_disk(self) -> bool:
        """Create/check the directory once; switch to memory-only (one WARNING) when it is unusable."""
        if not self._disk:
            return False
        if self._dir_checked:
            return True
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = directory.stat()
            if st.st_uid != os.geteuid():
                return self._go_memory_only(f"the directory {directory} belongs to another user")
            if stat.S_IMODE(st.st_mode) & 0o077:
                os.chmod(directory, 0o700)
                _warn_once(
                    ("perm-dir", str(directory)),
                    "CARTO token cache directory %s was readable by others (mode %o); set it to 0700",
                    directory,
                    stat.S_IMODE(st.st_mode),
                )
            if not os.access(directory, os.W_OK | os.X_OK):
                return self._go_memory_only(f"the directory {directory} is not writable")
        except OSError as exc:
            return self._go_memory_only(f"{directory} cannot be created or used ({exc.strerror or exc})")
        self._warn_if_network_filesystem(directory)
        self._dir_checked = True
        return True

    def _go_memory_only(self, why: str) -> bool:
        self._disk = False
        _warn_once(
            ("memory-only", str(self.path)),
            "CARTO token cache falls back to memory because %s; tokens are not shared between processes. "
            "Set the token cache directory (connection extra 'cache_dir' or cache_filepath) "
            "to a private writable directory.",
            why,
        )
        return False

    @staticmethod
    def _warn_if_network_filesystem(directory: Path) -> None:
        try:
            with open("/proc/mounts", encoding="utf-8") as mounts:
                table = [line.split()[1:3] for line in mounts if len(line.split()) >= 3]
        except OSError:
            return
        resolved = str(directory.resolve())
        best = max(
            (m for m in table if resolved == m[0] or resolved.startswith(m[0].rstrip("/") + "/")),
            key=lambda m: len(m[0]),
            default=None,
        )
        if best is not None and best[1] in NETWORK_FILESYSTEMS:
            _warn_once(
                ("netfs", resolved),
                "CARTO token cache %s is on a %s filesystem, where file locks may not work across machines; "
                "use a local directory per machine or the Redis token cache.",
                directory,
                best[1],
            )

    @contextlib.contextmanager
    def _file_lock(self, *, blocking: bool, path: Path | None = None) -> Iterator[bool | None]:
        """Hold a cross-process lock (the file's, or ``path``). Yields True (held), False (not held:
        busy or timed out) or None (memory-only cache: there is nothing to lock)."""
        lock_path = path or self.lock_path
        if not self._ready_for_disk() or not self._regular_or_absent(lock_path):
            yield None
            return
        started = time.monotonic()
        try:
            release = _flock.acquire_exclusive(lock_path, self.lock_timeout if blocking else 0)
        except OSError as exc:
            self._go_memory_only(f"the lock file {lock_path} cannot be created ({exc.strerror or exc})")
            yield None
            return
        if release is None:
            if blocking:
                log.warning(
                    "Waited %.0f s for the CARTO token cache lock %s, held by a stuck process; "
                    "fetching a token without it",
                    time.monotonic() - started,
                    lock_path,
                )
            yield False
            return
        try:
            waited = time.monotonic() - started
            if waited > 0.5:
                log.debug("Waited %.2f s for the CARTO token cache lock", waited)
            yield True
        finally:
            release()

    def _regular_or_absent(self, path: Path) -> bool:
        """False (memory-only, one WARNING) when ``path`` is a FIFO, directory, device or socket:
        opening a FIFO would hang, a directory or device cannot hold tokens."""
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return True
        except OSError as exc:
            return self._go_memory_only(f"{path} cannot be examined ({exc.strerror or exc})")
        if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
            return True
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a special file"
        return self._go_memory_only(f"{path} is {kind}, not a regular file")

    def _read_file(self) -> _FileRead:
        """Read every entry, lock-free (writers replace the file atomically); never blocks."""
        if not self._disk or not self._regular_or_absent(self.path):
            return _FileRead({})
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags)
        except (FileNotFoundError, NotADirectoryError):
            return _FileRead({})
        except OSError as exc:
            link = exc.errno == errno.ELOOP
            _warn_once(
                ("unreadable", str(self.path)),
                "CARTO token cache %s %s",
                self.path,
                "is a symbolic link; ignoring it" if link else f"cannot be read: {exc}",
            )
            return _FileRead({})
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):  # appeared since the check above
                self._regular_or_absent(self.path)
                return _FileRead({}, ours=False)
            raw = handle.read(MAX_CACHE_FILE_BYTES + 1)
        return self._parse(raw, st)

    def _parse(self, raw: bytes, st: os.stat_result) -> _FileRead:
        try:
            doc = json.loads(raw) if len(raw) <= MAX_CACHE_FILE_BYTES else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            doc = None
        if not (isinstance(doc, dict) and doc.get("format") == CACHE_FORMAT):
            _warn_once(
                ("foreign", str(self.path), str(st.st_ino), str(st.st_mtime_ns)),
                "CARTO token cache %s is %s; leaving it untouched and keeping tokens in memory "
                "(point cache_filepath or the cache_dir extra elsewhere to share them between processes)",
                self.path,
                "carto-auth's format, not a carto-provider token cache"
                if isinstance(doc, dict) and "expiration" in doc
                else "not valid JSON or not a carto-provider token cache",
            )
            return _FileRead({}, ours=False, foreign=(st.st_ino, st.st_mtime_ns))
        entries: dict[str, Any] = doc["entries"] if isinstance(doc.get("entries"), dict) else {}
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            _warn_once(
                ("insecure", str(self.path), str(st.st_ino)),
                "CARTO token cache %s is readable by others or not ours (mode %o); not using its tokens, "
                "it will be replaced by a private file",
                self.path,
                stat.S_IMODE(st.st_mode),
            )
            return _FileRead({})
        return _FileRead(entries)

    def _update(self, key: CacheKey, entry: dict[str, Any]) -> None:
        """Rewrite the file with ``entry`` under ``key``, dropping long-expired and malformed entries."""
        if not self._ready_for_disk():
            return
        with self._file_lock(blocking=True):  # other keys' writers: no entry lost between read and write
            read = self._read_file()
            if not read.ours and not (self.own_location and read.foreign and self._set_aside(read.foreign)):
                return
            now = time.time()
            entries = {k: v for k, v in read.entries.items() if _worth_keeping(v, now)}
            entries[key.id] = entry
            try:
                self._write_file(entries)
            except OSError as exc:
                self._go_memory_only(f"writing {self.path} failed ({exc.strerror or exc})")

    def _set_aside(self, seen: tuple[int, int]) -> bool:
        """Rename the unusable file ``seen`` (inode, mtime) to a private ``.damaged-<time>`` sibling."""
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            st = os.stat(self.path, follow_symlinks=False)
            if (st.st_ino, st.st_mtime_ns) != seen or not stat.S_ISREG(st.st_mode):
                return False  # replaced since it was read: read it again next time
            os.chmod(self.path, 0o600, follow_symlinks=False)
            os.replace(self.path, aside)
        except OSError as exc:
            self._go_memory_only(f"setting aside the unusable {self.path} failed ({exc.strerror or exc})")
            return False
        log.warning(
            "CARTO token cache %s was not usable; it was set aside as %s and replaced", self.path, aside
        )
        return True

    def _write_file(self, entries: dict[str, Any]) -> None:
        payload = json.dumps(
            {"format": CACHE_FORMAT, "version": CACHE_VERSION, "entries": entries}, indent=1, sort_keys=True
        ).encode("utf-8")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _worth_keeping(entry: Any, now: float) -> bool:
    """A well-formed entry not long expired; a malformed one is dropped, never an error."""
    if not isinstance(entry, Mapping):
        return False
    expires_at = entry.get("expires_at")
    if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
        return False
    return bool(expires_at > now - EXPIRED_ENTRY_GRACE)


def _number(value: Any) -> float:
    """A recorded time, or 0.0 for anything that is not a number."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
