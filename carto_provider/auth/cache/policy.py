"""The token cache's policy: when to use a cached token and when to fetch, over any :mod:`.stores` store.

Design (see ``shared/reference/token-peers.md``, "What a best-in-class hook should do"):

* Each entry is keyed by the SHA-256 of everything that changes the token (auth URL, audience, client
  id, grant, organisation, a hash of the secret...): :class:`CacheKey`.
* A process-wide in-memory layer sits in front of the store (one per store ``namespace``: every cache
  on one file shares it; a memory-only cache keeps its own, which goes away with it). A hit costs a
  dictionary look-up and never touches the store.
* Refresh is single-flight: a thread lock per key, then the store's cross-process lock (a file lock, a
  Redis lock); under both, the store is read again and the network is used only if the token is still
  stale. A caller that finds the lock busy waits for its release (the kernel wakes every waiter at
  once) and reads the new token once, without queueing for the lock. A stuck lock holder delays
  others by the store's lock timeout at most.
* Two refresh windows: *advisory* (from min(30 min, lifetime/2) before expiry: try without waiting,
  keep the current token if another process is busy or the refresh fails, at most once per 30 s)
  and *mandatory* (from min(5 min, lifetime/4) before expiry: refresh or raise). Short-lived tokens
  therefore cannot cause a refresh storm.
* A fetch that failed while others waited for it is not repeated by them: its error is raised in each
  (recorded in the process and in the store), so an outage costs one request per retry round.

The stores (file: locks, atomic writes, permissions; memory; Redis: sealed entries, fleet-wide lock)
decide nothing of this; see :mod:`.stores`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from carto_provider.auth.cache.file import FileStore
from carto_provider.auth.cache.stores import CacheKey, MemoryStore, StoredEntry, TokenStore
from carto_provider.auth.tokens import MIN_ADVISORY_INTERVAL, AccessToken
from carto_provider.errors import CartoError, CredentialsError

log = logging.getLogger(__name__)

#: Longer than the worst token fetch (timeouts plus retries), short enough not to hang a task.
DEFAULT_LOCK_TIMEOUT = 60.0

TokenFetcher = Callable[[], AccessToken]


# Process-wide state, shared by every TokenCache over stores of one namespace (the "in-process layer").
_STATE_LOCK = threading.Lock()
_MEMORY: dict[tuple[str, str], AccessToken] = {}
_LAST_ATTEMPT: dict[tuple[str, str], float] = {}
_THREAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_FAILURES: dict[tuple[str, str], tuple[float, str]] = {}  # the last failed fetch: (when, message)


#: Digests of the tokens a server refused in this process, per cache key: a store (a replayed Redis
#: entry, a stale file) that still holds one never gets it adopted again.
_REFUSED: dict[str, set[str]] = {}
_MAX_REFUSED = 32


def _refused_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _note_refused(key: CacheKey, value: str) -> None:
    with _STATE_LOCK:
        seen = _REFUSED.setdefault(key.id, set())
        if len(seen) >= _MAX_REFUSED:
            seen.clear()
        seen.add(_refused_digest(value))


def _not_refused(token: AccessToken, key: CacheKey, rejected: str | None) -> bool:
    if token.value == rejected:
        return False
    refused = _REFUSED.get(key.id)
    return not refused or _refused_digest(token.value) not in refused


def _usable(token: AccessToken, key: CacheKey, now: float, min_ttl: float, rejected: str | None) -> bool:
    return _not_refused(token, key, rejected) and token.usable(now, min_ttl)


class TokenCache:
    """The refresh policy over one :class:`~.stores.TokenStore`: tokens shared by threads and processes.

    ``store`` is a store, or a path (a :class:`~.cache_file.FileStore` there, locked for at most
    ``lock_timeout`` seconds, entries read as ``token_class``: an :class:`AccessToken` subclass that
    keeps more fields in ``to_dict``, such as the interactive login's identity, gets them back), or
    None (a :class:`~.stores.MemoryStore` private to this object).
    """

    def __init__(
        self,
        store: TokenStore | str | os.PathLike[str] | None,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        token_class: type[AccessToken] = AccessToken,
    ):
        if store is None:
            store = MemoryStore()
        elif isinstance(store, str | os.PathLike):
            store = FileStore(store, lock_timeout=lock_timeout, token_class=token_class)
        self.storage: TokenStore = store
        #: The longest wait for another process's refresh (the store's own lock timeout, if it has one).
        self.lock_timeout: float = getattr(store, "lock_timeout", lock_timeout)
        shared = store.namespace is not None
        self._namespace = store.namespace or "memory"
        self._memory = _MEMORY if shared else {}
        self._last_attempt = _LAST_ATTEMPT if shared else {}
        self._thread_locks = _THREAD_LOCKS if shared else {}
        self._failures = _FAILURES if shared else {}

    def __repr__(self) -> str:
        return f"TokenCache({self.storage!r})"

    @property
    def path(self) -> Path | None:
        """The cache file, for a file-backed cache."""
        return self.storage.path if isinstance(self.storage, FileStore) else None

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
        if rejected is not None:
            _note_refused(key, rejected)
        token = self._memory.get(slot)
        if token is not None and _not_refused(token, key, rejected) and token.fresh(now, min_ttl):
            log.debug("CARTO token cache hit in memory (%s, fp=%s)", key.label, token.fingerprint)
            return token
        token = self._best(key, token, self.storage.read(key).token, rejected, now)
        if token is not None and token.fresh(now, min_ttl):
            self._memory[slot] = token
            log.debug("CARTO token cache hit in the store (%s, fp=%s)", key.label, token.fingerprint)
            return token
        if token is not None and token.usable(now, min_ttl):
            self._memory[slot] = token
            return self._refresh_ahead(key, fetch, token, min_ttl)
        return self._refresh_now(key, fetch, min_ttl, rejected)

    def clear(self, key: CacheKey) -> bool:
        """Delete ``key``'s entry (``logout``); return True when there was one."""
        had = self._memory.pop((self._namespace, key.id), None) is not None
        return self.storage.delete(key) or had

    def peek(self, key: CacheKey) -> AccessToken | None:
        """The cached token for ``key``, if any, without fetching or validating it."""
        return self._best(
            key, self._memory.get((self._namespace, key.id)), self.storage.read(key).token, None, time.time()
        )

    def store(self, key: CacheKey, token: AccessToken) -> None:
        """Save a token obtained elsewhere (e.g. by an interactive login) under ``key``."""
        slot = (self._namespace, key.id)
        with self._thread_lock(slot), self.storage.lock(key, blocking=True):
            self.storage.write(key, token)
            self._memory[slot] = token

    def _thread_lock(self, slot: tuple[str, str]) -> threading.Lock:
        with _STATE_LOCK:
            return self._thread_locks.setdefault(slot, threading.Lock())

    # ------------------------------------------------------------------ refresh paths

    @staticmethod
    def _best(
        key: CacheKey, a: AccessToken | None, b: AccessToken | None, rejected: str | None, now: float
    ) -> AccessToken | None:
        candidates = [
            t for t in (a, b) if t is not None and t.expires_at > now and _not_refused(t, key, rejected)
        ]
        return max(candidates, key=lambda t: t.expires_at, default=None)

    def _refresh_now(
        self, key: CacheKey, fetch: TokenFetcher, min_ttl: float, rejected: str | None
    ) -> AccessToken:
        """Mandatory refresh: the first caller fetches under the locks; the others wait for its lock to
        be released and read what it wrote (once), falling back to blocking for the lock."""
        slot = (self._namespace, key.id)
        started = time.time()
        with self._thread_lock(slot):
            token = self._memory.get(slot)
            if token is not None and _usable(token, key, time.time(), min_ttl, rejected):
                return token
            for _ in range(2):  # busy twice: a holder that wrote nothing usable; queue for the lock
                with self.storage.lock(key, blocking=False) as locked:
                    if locked is not False:
                        return self._fetch_locked(key, fetch, min_ttl, rejected, started)
                self.storage.wait_released(key, timeout=self.lock_timeout)
                entry = self.storage.read(key)
                if entry.token is not None and _usable(entry.token, key, time.time(), min_ttl, rejected):
                    self._memory[slot] = entry.token
                    return entry.token
                self._raise_shared_failure(key, entry, started)
            with self.storage.lock(key, blocking=True):
                return self._fetch_locked(key, fetch, min_ttl, rejected, started)

    def _fetch_locked(
        self, key: CacheKey, fetch: TokenFetcher, min_ttl: float, rejected: str | None, started: float
    ) -> AccessToken:
        """Under the store's lock: read again, fetch if still needed, write."""
        slot = (self._namespace, key.id)
        entry = self.storage.read(key)
        if entry.token is not None and _usable(entry.token, key, time.time(), min_ttl, rejected):
            self._memory[slot] = entry.token
            return entry.token
        self._raise_shared_failure(key, entry, started)
        try:
            token = self._fetch(key, fetch, reason="expired" if rejected is None else "rejected")
        except CartoError as exc:
            self._record_failure(key, str(exc))
            raise
        self.storage.write(key, token)
        self._memory[slot] = token
        return token

    def _raise_shared_failure(self, key: CacheKey, entry: StoredEntry, since: float) -> None:
        """Raise the error of a fetch for ``key`` that failed after ``since``, while this caller waited
        for it (in this process or another): an outage costs one request per retry round, not one per
        waiting process."""
        failed_at, failure = self._failures.get((self._namespace, key.id), (0.0, ""))
        if entry.failed_at > failed_at:
            failed_at, failure = entry.failed_at, entry.failure
        if failed_at > since:
            raise CredentialsError(
                f"Another process could not get a CARTO token for {key.label} while this one waited for "
                f"it, so this one did not try again: {failure}"
            )

    def _record_failure(self, key: CacheKey, message: str) -> None:
        """Remember a failed fetch (message already free of secrets) for the callers waiting on it."""
        now = time.time()
        self._failures[(self._namespace, key.id)] = (now, message)
        self.storage.record_failure(key, now, message)

    def _refresh_ahead(
        self, key: CacheKey, fetch: TokenFetcher, current: AccessToken, min_ttl: float
    ) -> AccessToken:
        """Advisory refresh: never wait, keep ``current`` if anyone else is busy or the fetch fails."""
        slot = (self._namespace, key.id)
        thread_lock = self._thread_lock(slot)
        if not thread_lock.acquire(blocking=False):
            return current
        try:
            with self.storage.lock(key, blocking=False) as locked:
                if locked is False:  # another process is refreshing right now
                    return current
                return self._try_ahead(key, fetch, current, min_ttl)
        finally:
            thread_lock.release()

    def _try_ahead(
        self, key: CacheKey, fetch: TokenFetcher, current: AccessToken, min_ttl: float
    ) -> AccessToken:
        """Under the locks: take a fresher stored token, or fetch unless someone tried under 30 s ago."""
        slot = (self._namespace, key.id)
        now = time.time()
        entry = self.storage.read(key)
        stored = entry.token
        if stored is not None and stored.fresh(now, min_ttl):
            self._memory[slot] = stored
            return stored
        if now - max(self._last_attempt.get(slot, 0.0), entry.last_attempt) < MIN_ADVISORY_INTERVAL:
            if stored is not None and stored.usable(now, min_ttl) and stored.expires_at > current.expires_at:
                self._memory[slot] = stored  # what that recent attempt got
                return stored
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
            self.storage.write(key, current, last_attempt=now)
            return current
        self.storage.write(key, token)
        self._memory[slot] = token
        return token

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
