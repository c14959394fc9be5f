"""A token cache on disk that many processes share safely, with an in-process layer in front.

Design (see ``shared/reference/token-peers.md``, "What a best-in-class hook should do"):

* One JSON file holds many entries, each under the SHA-256 of everything that changes the token
  (auth URL, audience, client id, grant, organisation, a hash of the secret...), so two clients never
  see each other's token even through the same file.
* The directory is 0700 and the file 0600 from birth whatever the umask; writes go to a temporary file
  that replaces the old one atomically, so readers never see half a file and never need a lock.
  A hit never rewrites the file.
* Refresh is single-flight: a thread lock per key, then an OS file lock on a sibling ``.lock`` file
  that is never deleted; under both, the file is read again and the network is used only if the token
  is still stale. A stuck lock holder delays others by ``lock_timeout`` seconds at most.
* Two refresh windows: *advisory* (from min(30 min, lifetime/2) before expiry: try without waiting,
  keep the current token if another process is busy or the refresh fails, at most once per 30 s)
  and *mandatory* (from min(5 min, lifetime/4) before expiry: refresh or raise). Short-lived tokens
  therefore cannot cause a refresh storm.
* A file this package did not write (``carto-auth``'s format, invalid JSON) is never overwritten,
  renamed or deleted: the cache keeps tokens in memory, with one WARNING. So does a FIFO, directory or
  device at the cache or lock path (never opened in a way that blocks), and a directory that cannot
  be written. One malformed entry is a miss for its key only.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from carto_provider.auth.tokens import MIN_ADVISORY_INTERVAL, AccessToken
from carto_provider.errors import CartoError, CredentialsError

log = logging.getLogger(__name__)

CACHE_FORMAT = "carto-provider-token-cache"
CACHE_VERSION = 1
#: Not carto-auth's ``~/.carto-auth``: the two libraries never touch each other's files.
DEFAULT_CACHE_DIR = "~/.carto-provider"
#: Longer than the worst token fetch (timeouts plus retries), short enough not to hang a task.
DEFAULT_LOCK_TIMEOUT = 60.0
#: A cache file is a few KiB; a larger one is not ours.
MAX_CACHE_FILE_BYTES = 1024 * 1024
#: Entries that expired longer ago than this are dropped when the file is next written.
EXPIRED_ENTRY_GRACE = 3600.0
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs"})

TokenFetcher = Callable[[], AccessToken]


class TokenStore(Protocol):
    """What :class:`~carto_provider.auth.CartoAuth` needs of a token cache: :class:`TokenCache` on one
    machine, :class:`~carto_provider.auth.redis_cache.RedisTokenCache` across a fleet."""

    def get(
        self, key: CacheKey, fetch: TokenFetcher, *, min_ttl: float = 0.0, rejected: str | None = None
    ) -> AccessToken:
        """A usable token for ``key``, calling ``fetch`` only when no cached one will do."""
        ...


# Process-wide state, shared by every TokenCache on the same file (the "in-process layer").
_STATE_LOCK = threading.Lock()
_MEMORY: dict[tuple[str, str], AccessToken] = {}
_LAST_ATTEMPT: dict[tuple[str, str], float] = {}
_THREAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_FAILURES: dict[tuple[str, str], tuple[float, str]] = {}  # the last failed fetch: (when, message)
_WARNED: set[tuple[str, ...]] = set()


def _warn_once(key: tuple[str, ...], message: str, *args: Any) -> None:
    with _STATE_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    log.warning(message, *args)


@dataclass(frozen=True)
class CacheKey:
    """Identifies one token: every field that changes what the auth server would return.

    ``fields`` are stored (hashed) in the key; ``label`` is a human description for logs and
    ``carto-provider status`` and must not contain secrets.
    """

    fields: tuple[tuple[str, str], ...]
    label: str

    @classmethod
    def of(cls, label: str, **fields: str | None) -> CacheKey:
        """Build a key from keyword fields (None values are kept as empty strings)."""
        return cls(tuple(sorted((k, v or "") for k, v in fields.items())), label)

    @functools.cached_property
    def id(self) -> str:  # cached: it is on every get_access_token() call
        """The SHA-256 of the fields: the entry's name in the cache file."""
        return hashlib.sha256(json.dumps(self.fields).encode("utf-8")).hexdigest()


def secret_digest(secret: str) -> str:
    """A one-way digest of a client secret, so a changed secret gets its own cache entry."""
    return hashlib.sha256(b"carto-provider-secret:" + secret.encode("utf-8")).hexdigest()


@dataclass
class _FileRead:
    entries: dict[str, Any]
    ours: bool = True  # False: a file this package did not write (carto-auth's...): never replaced


class TokenCache:
    """Tokens shared by threads and processes through one private JSON file.

    ``path=None`` gives a cache private to this object that lives in memory only. ``token_class`` is
    the :class:`AccessToken` subclass entries are read as (one that keeps more fields in ``to_dict``,
    such as the interactive login's identity, gets them back through its ``from_dict``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        token_class: type[AccessToken] = AccessToken,
    ):
        self.lock_timeout = lock_timeout
        self.token_class = token_class
        self.path: Path | None = Path(path).expanduser().absolute() if path is not None else None
        self._namespace = str(self.path) if self.path is not None else "memory"
        self._disk = self.path is not None
        self._dir_checked = False
        # A file cache shares the process-wide in-memory layer with every cache on the same file; a
        # memory-only cache (use_cache=False) keeps its own, which goes away with it.
        self._memory = _MEMORY if self.path is not None else {}
        self._last_attempt = _LAST_ATTEMPT if self.path is not None else {}
        self._thread_locks = _THREAD_LOCKS if self.path is not None else {}
        self._failures = _FAILURES if self.path is not None else {}

    def __repr__(self) -> str:
        return f"TokenCache(path={str(self.path) if self.path else None!r}, on_disk={self._disk})"

    @property
    def lock_path(self) -> Path | None:
        """The sibling lock file (kept, never deleted, so every process locks the same inode)."""
        return self.path.with_name(self.path.name + ".lock") if self.path is not None else None

    # ------------------------------------------------------------------ public API

    def get(
        self,
        key: CacheKey,
        fetch: TokenFetcher,
        *,
        min_ttl: float = 0.0,
        rejected: str | None = None,
    ) -> AccessToken:
        """Return a usable token for ``key``, calling ``fetch`` at most once across threads and processes.

        ``min_ttl`` asks for a token valid at least that many more seconds. ``rejected`` is a token
        value a server has just refused (HTTP 401): it is never returned again, and only the first
        of many callers reporting it fetches a replacement (compare-and-swap).
        """
        slot = (self._namespace, key.id)
        now = time.time()
        token = self._memory.get(slot)
        if token is not None and token.value != rejected and token.fresh(now, min_ttl):
            log.debug("CARTO token cache hit in memory (%s, fp=%s)", key.label, token.fingerprint)
            return token
        token = self._best(token, self._read_token(key), rejected, now)
        if token is not None and token.fresh(now, min_ttl):
            self._memory[slot] = token
            log.debug("CARTO token cache hit on disk (%s, fp=%s)", key.label, token.fingerprint)
            return token
        if token is not None and token.usable(now, min_ttl):
            self._memory[slot] = token
            return self._refresh_ahead(key, fetch, token, min_ttl)
        return self._refresh_now(key, fetch, min_ttl, rejected)

    def clear(self, key: CacheKey) -> bool:
        """Delete ``key``'s entry (``logout``); return True when there was one."""
        slot = (self._namespace, key.id)
        had = self._memory.pop(slot, None) is not None
        if not self._ready_for_disk():
            return had
        with self._file_lock(blocking=True) as locked:
            if locked is None:
                return had
            read = self._read_file()
            if read.ours and key.id in read.entries:
                entries = dict(read.entries)
                del entries[key.id]
                self._write_file(entries)
                return True
        return had

    def peek(self, key: CacheKey) -> AccessToken | None:
        """The cached token for ``key``, if any, without fetching or validating it."""
        return self._best(
            self._memory.get((self._namespace, key.id)), self._read_token(key), None, time.time()
        )

    def store(self, key: CacheKey, token: AccessToken) -> None:
        """Save a token obtained elsewhere (e.g. by an interactive login) under ``key``."""
        slot = (self._namespace, key.id)
        with self._thread_lock(slot), self._file_lock(blocking=True):
            self._save(key, token)
            self._memory[slot] = token

    def _thread_lock(self, slot: tuple[str, str]) -> threading.Lock:
        with _STATE_LOCK:
            return self._thread_locks.setdefault(slot, threading.Lock())

    # ------------------------------------------------------------------ refresh paths

    @staticmethod
    def _best(
        a: AccessToken | None, b: AccessToken | None, rejected: str | None, now: float
    ) -> AccessToken | None:
        candidates = [t for t in (a, b) if t is not None and t.value != rejected and t.expires_at > now]
        return max(candidates, key=lambda t: t.expires_at, default=None)

    def _refresh_now(
        self, key: CacheKey, fetch: TokenFetcher, min_ttl: float, rejected: str | None
    ) -> AccessToken:
        """Mandatory refresh: block for the locks, re-check, fetch if still needed.

        A fetch that failed while this caller waited (in this process or another) is not repeated:
        its error is raised here too, so an outage costs one request per retry round, not one per
        waiting process."""
        slot = (self._namespace, key.id)
        started = time.time()
        with self._thread_lock(slot):
            token = self._memory.get(slot)
            if token is not None and token.value != rejected and token.usable(time.time(), min_ttl):
                return token
            with self._file_lock(blocking=True):
                token = self._read_token(key)
                if token is not None and token.value != rejected and token.usable(time.time(), min_ttl):
                    self._memory[slot] = token
                    return token
                self._raise_shared_failure(key, started)
                try:
                    token = self._fetch(key, fetch, reason="expired" if rejected is None else "rejected")
                except CartoError as exc:
                    self._record_failure(key, str(exc))
                    raise
                self._save(key, token)
                self._memory[slot] = token
                return token

    def _raise_shared_failure(self, key: CacheKey, since: float) -> None:
        """Raise the error of a fetch for ``key`` that failed after ``since`` (it was waited for)."""
        failed_at, failure = self._failures.get((self._namespace, key.id), (0.0, ""))
        entry = self._read_file().entries.get(key.id)
        recorded = entry.get("failed_at") if isinstance(entry, Mapping) else None
        if isinstance(recorded, int | float) and recorded > failed_at:
            failed_at, failure = float(recorded), str(entry.get("failure") or "")  # type: ignore[union-attr]
        if failed_at > since:
            raise CredentialsError(
                f"Another process could not get a CARTO token for {key.label} while this one waited for "
                f"it, so this one did not try again: {failure}"
            )

    def _record_failure(self, key: CacheKey, message: str) -> None:
        """Remember a failed fetch (message already free of secrets) for the callers waiting on it."""
        now = time.time()
        self._failures[(self._namespace, key.id)] = (now, message)
        read = self._read_file()
        if not self._ready_for_disk() or not read.ours:
            return
        previous = read.entries.get(key.id)
        entry = dict(previous) if isinstance(previous, Mapping) else {}
        entries = {k: v for k, v in read.entries.items() if _worth_keeping(v, now)}
        entries[key.id] = {**entry, "label": key.label, "failed_at": now, "failure": message[:1000]}
        try:
            self._write_file(entries)
        except OSError as exc:
            self._go_memory_only(f"writing {self.path} failed ({exc.strerror or exc})")

    def _refresh_ahead(
        self, key: CacheKey, fetch: TokenFetcher, current: AccessToken, min_ttl: float
    ) -> AccessToken:
        """Advisory refresh: never wait, keep ``current`` if anyone else is busy or the fetch fails."""
        slot = (self._namespace, key.id)
        thread_lock = self._thread_lock(slot)
        if not thread_lock.acquire(blocking=False):
            return current
        try:
            with self._file_lock(blocking=False) as locked:
                if locked is False:  # another process is refreshing right now
                    return current
                now = time.time()
                disk, disk_last_attempt = self._read_entry(key)
                if disk is not None and disk.fresh(now, min_ttl):
                    self._memory[slot] = disk
                    return disk
                last = max(self._last_attempt.get(slot, 0.0), disk_last_attempt)
                if now - last < MIN_ADVISORY_INTERVAL:
                    return current
                self._last_attempt[slot] = now
                try:
                    token = self._fetch(key, fetch, reason="expiring")
                except Exception as exc:  # keep serving the still-valid token
                    log.warning(
                        "Could not refresh the CARTO token ahead of expiry (%s); keeping the current one "
                        "(fp=%s, valid %.0f s more): %s",
                        key.label,
                        current.fingerprint,
                        current.expires_at - now,
                        exc,
                    )
                    self._save(key, current, last_attempt=now)
                    return current
                self._save(key, token)
                self._memory[slot] = token
                return token
        finally:
            thread_lock.release()

    @staticmethod
    def _fetch(key: CacheKey, fetch: TokenFetcher, *, reason: str) -> AccessToken:
        started = time.monotonic()
        token = fetch()
        log.info(
            "New CARTO access token for %s (%s): expires in %.0f s, fp=%s, took %.2f s",
            key.label,
            reason,
            token.expires_at - time.time(),
            token.fingerprint,
            time.monotonic() - started,
        )
        return token

    # ------------------------------------------------------------------ disk

    def _ready_for_disk(self) -> bool:
        """Create/check the directory once; switch to memory-only (one WARNING) when it is unusable."""
        if not self._disk or self.path is None:
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
            "Set the token cache directory (connection extra 'token_cache_dir' or cache_filepath) "
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
    def _file_lock(self, *, blocking: bool) -> Iterator[bool | None]:
        """Hold the cross-process lock. Yields True (held), False (not held: busy or timed out)
        or None (memory-only cache: there is nothing to lock)."""
        if (
            not self._ready_for_disk()
            or self.lock_path is None
            or not self._regular_or_absent(self.lock_path)
        ):
            yield None
            return
        import filelock  # on the first refresh, not at DAG-parse time

        lock = filelock.FileLock(
            self.lock_path,
            timeout=self.lock_timeout if blocking else 0,
            mode=0o600,
            preserve_lock_file=True,
            thread_local=False,
        )
        started = time.monotonic()
        try:
            lock.acquire()
        except filelock.Timeout:
            if blocking:
                log.warning(
                    "Waited %.0f s for the CARTO token cache lock %s, held by a stuck process; "
                    "fetching a token without it",
                    time.monotonic() - started,
                    self.lock_path,
                )
            yield False
            return
        except OSError as exc:
            self._go_memory_only(f"the lock file {self.lock_path} cannot be created ({exc.strerror or exc})")
            yield None
            return
        try:
            waited = time.monotonic() - started
            if waited > 0.5:
                log.debug("Waited %.2f s for the CARTO token cache lock", waited)
            yield True
        finally:
            lock.release()

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
        if not self._disk or self.path is None or not self._regular_or_absent(self.path):
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
                "(point cache_filepath or token_cache_dir elsewhere to share them between processes)",
                self.path,
                "carto-auth's format, not a carto-provider token cache"
                if isinstance(doc, dict) and "expiration" in doc
                else "not valid JSON or not a carto-provider token cache",
            )
            return _FileRead({}, ours=False)
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

    def _read_token(self, key: CacheKey) -> AccessToken | None:
        return self._read_entry(key)[0]

    def _read_entry(self, key: CacheKey) -> tuple[AccessToken | None, float]:
        """The cached token for ``key`` and when a refresh of it was last attempted (0: never)."""
        entry = self._read_file().entries.get(key.id)
        last = entry.get("last_attempt") if isinstance(entry, dict) else None
        return self.token_class.from_dict(entry), float(last) if isinstance(last, int | float) else 0.0

    def _save(self, key: CacheKey, token: AccessToken, *, last_attempt: float | None = None) -> None:
        """Write ``token`` under ``key`` (the caller holds the file lock, or it timed out)."""
        if not self._ready_for_disk():
            return
        read = self._read_file()
        if not read.ours:
            return
        now = time.time()
        entries = {k: v for k, v in read.entries.items() if _worth_keeping(v, now)}
        entry: dict[str, Any] = token.to_dict()
        entry["label"] = key.label
        if last_attempt is not None:
            entry["last_attempt"] = last_attempt
        entries[key.id] = entry
        try:
            self._write_file(entries)
        except OSError as exc:
            self._go_memory_only(f"writing {self.path} failed ({exc.strerror or exc})")

    def _write_file(self, entries: dict[str, Any]) -> None:
        assert self.path is not None
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
