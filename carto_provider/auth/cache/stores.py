"""Where cached tokens live: the storage half of the token cache, under :class:`~.policy.TokenCache`'s policy.

A store keeps, per :class:`CacheKey`, one :class:`StoredEntry` (the token, the last advisory
refresh attempt, the last failed fetch) and offers a per-key lock for single flight across processes.
It decides nothing about freshness: that is the policy's job. Three stores share this contract:
:class:`~.file.FileStore` (one private file per user and machine), :class:`MemoryStore` (one
object's tokens, ``use_cache=False``) and :class:`~.redis.RedisStore` (a fleet, over Redis).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from carto_provider.auth.tokens import AccessToken


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
        """The SHA-256 of the fields: the entry's name in a store."""
        return hashlib.sha256(json.dumps(self.fields).encode("utf-8")).hexdigest()


def secret_digest(secret: str) -> str:
    """A one-way digest of a client secret, so a changed secret gets its own cache entry."""
    return hashlib.sha256(b"carto-provider-secret:" + secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredEntry:
    """What a store holds for one key; all fields empty when it holds nothing."""

    token: AccessToken | None = None
    #: When a refresh was last attempted ahead of expiry (epoch seconds, 0: never): at most one per 30 s.
    last_attempt: float = 0.0
    #: When a fetch last failed (0: never) and its message (free of secrets), for the callers waiting on it.
    failed_at: float = 0.0
    failure: str = ""


EMPTY = StoredEntry()


class TokenStore(Protocol):
    """The storage half of a token cache (see the module docstring)."""

    #: The in-process memory layer's namespace: stores with equal namespaces share one layer in a
    #: process (e.g. every cache on one file). None: the layer belongs to the cache object alone.
    namespace: str | None

    def read(self, key: CacheKey) -> StoredEntry:
        """The entry for ``key`` (:data:`EMPTY` if none); never blocks on a lock, never raises for
        damaged or unreachable storage."""
        ...

    def write(self, key: CacheKey, token: AccessToken, *, last_attempt: float | None = None) -> None:
        """Store ``token`` under ``key`` (the caller holds :meth:`lock`, or it timed out);
        ``last_attempt`` records an advisory refresh attempt with it."""
        ...

    def record_failure(self, key: CacheKey, when: float, message: str) -> None:
        """Remember a failed fetch for ``key`` (``message`` free of secrets), keeping its token."""
        ...

    def delete(self, key: CacheKey) -> bool:
        """Remove ``key``'s entry; True when there was one."""
        ...

    def lock(self, key: CacheKey, *, blocking: bool) -> AbstractContextManager[bool | None]:
        """Hold the cross-process lock of ``key``. Yields True (held), False (not held: busy, or a
        blocking wait timed out because the holder is stuck) or None (nothing to lock)."""
        ...

    def wait_released(self, key: CacheKey, *, timeout: float) -> None:
        """Return once no other process holds ``key``'s lock (at once when none does), or after
        ``timeout`` seconds: a caller that found the lock busy reads what its holder wrote."""
        ...


class MemoryStore:
    """Tokens in this object only, gone with it (``use_cache=False``); threads are the only sharers,
    and the policy's thread lock already serialises them, so there is nothing to lock."""

    namespace: str | None = None

    def __init__(self) -> None:
        self._entries: dict[str, StoredEntry] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return "MemoryStore()"

    def read(self, key: CacheKey) -> StoredEntry:
        """The entry for ``key``."""
        return self._entries.get(key.id, EMPTY)

    def write(self, key: CacheKey, token: AccessToken, *, last_attempt: float | None = None) -> None:
        """Keep ``token`` (and ``last_attempt``, when given) for ``key``."""
        with self._guard:
            previous = self._entries.get(key.id, EMPTY)
            attempt = last_attempt or 0.0
            self._entries[key.id] = dataclasses.replace(previous, token=token, last_attempt=attempt)

    def record_failure(self, key: CacheKey, when: float, message: str) -> None:
        """Remember a failed fetch for ``key``."""
        with self._guard:
            previous = self._entries.get(key.id, EMPTY)
            self._entries[key.id] = dataclasses.replace(previous, failed_at=when, failure=message)

    def delete(self, key: CacheKey) -> bool:
        """Forget ``key``."""
        with self._guard:
            return self._entries.pop(key.id, None) is not None

    @contextlib.contextmanager
    def lock(self, key: CacheKey, *, blocking: bool) -> Iterator[bool | None]:
        """Nothing to lock across processes."""
        yield None

    def wait_released(self, key: CacheKey, *, timeout: float) -> None:
        """Nothing to wait for: only this process uses the store (its callers share a thread lock)."""
