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

import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from carto_provider.auth.cache_file import CACHE_FORMAT as CACHE_FORMAT
from carto_provider.auth.cache_file import CACHE_VERSION as CACHE_VERSION
from carto_provider.auth.cache_file import CacheFile, _worth_keeping
from carto_provider.auth.tokens import MIN_ADVISORY_INTERVAL, AccessToken
from carto_provider.errors import CartoError, CredentialsError

log = logging.getLogger(__name__)

#: Not carto-auth's ``~/.carto-auth``: the two libraries never touch each other's files.
DEFAULT_CACHE_DIR = "~/.carto-provider"
#: Longer than the worst token fetch (timeouts plus retries), short enough not to hang a task.
DEFAULT_LOCK_TIMEOUT = 60.0

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


class TokenCache(CacheFile):
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
