"""A fleet-wide token store on Redis (:class:`RedisStore`) under the one :class:`~.cache.TokenCache` policy.

The file store makes about one token per machine per token lifetime; a fleet of Celery workers, or
Kubernetes pods that live for one task, would make one per machine or per task. This store shares
one token across every machine that reaches the same Redis (the broker a Celery deployment has):
the policy's in-process layer answers first; on a miss it reads Redis (one MGET: token and last
failure); to refresh, it takes this machine's lock (one process per machine goes on), then a Redis
lock (one per token key), reads Redis again and fetches only if no other machine has stored a token
meanwhile, nor failed to get one while it waited. Tokens are stored in Redis with their remaining
lifetime as TTL, and copied to this machine's store.

Entries are encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the client secret,
salted with the entry's key id, and bound to that id, so the broker alone, or anyone who can read it,
cannot use a token, and an entry cannot be moved to another key or altered unnoticed
(:mod:`.redis_seal`).

Redis down or slow (2 s socket timeouts): one WARNING per process, then this machine's store stands in
alone (still single-flight per machine), Redis being tried again every 10 s. The Redis lock is waited
for as long as the machine's lock (the worst case of a token request, ``single_flight_wait``); its
15 s lease is renewed while the holder lives, so a waiter takes over only when the holder died, and a
fetch that failed while others waited raises its error in all of them, fleet-wide: an auth outage
costs one request per retry round. Nothing here logs the Redis password or a token.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from carto_provider.api.responses import redact_url
from carto_provider.auth.cache._seal import SharedEntry, seal, seal_failure, unseal, unseal_failure
from carto_provider.auth.cache.policy import TokenCache
from carto_provider.auth.cache.stores import CacheKey, StoredEntry, TokenStore
from carto_provider.auth.tokens import AccessToken
from carto_provider.errors import CredentialsConfigError

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

KEY_PREFIX = "carto-provider:token:"
LOCK_PREFIX = "carto-provider:lock:"
FAILURE_PREFIX = "carto-provider:failure:"
#: Longest wait for another machine's fetch when the fallback store has no wait of its own (otherwise
#: the fallback's: the worst case of a token request, see ``single_flight_wait``).
DEFAULT_REDIS_LOCK_TIMEOUT = 30.0
#: The Redis lock's lease: renewed every third of it while its holder lives, so it runs out this long
#: after the holder died, and only then does a waiter take over.
LOCK_LEASE = 15.0
#: How long a failed fetch is kept in Redis for the machines that waited on it (longer than any wait).
FAILURE_TTL = 900.0
#: Connect and read timeout of every Redis command: a dead broker must not hold a task up.
SOCKET_TIMEOUT = 2.0
_INSTALL_HINT = "install the 'redis' extra: pip install 'airflow-provider-carto[redis]'"

_CLIENTS: dict[tuple[str, float], redis.Redis] = {}
_STATE_LOCK = threading.Lock()
#: After a Redis failure, this machine's store stands in alone for this long before Redis is tried again
#: (a dead or slow broker costs one timeout per process per period, not one per command).
RETRY_UNAVAILABLE_AFTER = 10.0
#: URLs (never logged) this process found unavailable, and until when it goes on without them.
_UNAVAILABLE: dict[str, float] = {}


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:
        raise CredentialsConfigError(
            f"The Redis token cache needs the redis client; {_INSTALL_HINT}."
        ) from None
    return redis


def _client(url: str, socket_timeout: float) -> redis.Redis:
    """One client (and connection pool) per URL per process, shared by every cache object."""
    redis = _redis_module()
    with _STATE_LOCK:
        client = _CLIENTS.get((url, socket_timeout))
        if client is None:
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry

            try:
                client = redis.Redis.from_url(
                    url,
                    socket_timeout=socket_timeout,
                    socket_connect_timeout=socket_timeout,
                    retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), 1),
                    health_check_interval=30,
                )
            except ValueError:
                raise CredentialsConfigError(
                    f"The Redis token cache URL {redact_url(url)!r} is not valid; expected "
                    "redis://[:password@]host:port/db, rediss://... or unix:///path."
                ) from None
            _CLIENTS[(url, socket_timeout)] = client
        return client


class RedisStore:
    """A :class:`~.stores.TokenStore` in Redis, shared by every machine that reaches it.

    ``fallback`` is this machine's store (normally its :class:`~.cache_file.FileStore`): it keeps a copy
    of every token, gives its lock first (one process per machine asks Redis) and stands in alone
    while Redis is unreachable. The Redis lock is waited for as long as the fallback's lock (the worst
    case of a token request) unless ``lock_timeout`` says otherwise. ``client_secret`` only derives the
    entries' keys.
    """

    def __init__(
        self,
        url: str,
        client_secret: str,
        *,
        fallback: TokenStore,
        lock_timeout: float | None = None,
        lock_lease: float = LOCK_LEASE,
        socket_timeout: float = SOCKET_TIMEOUT,
    ) -> None:
        if not client_secret:
            raise CredentialsConfigError(
                "The Redis token cache needs the client secret to encrypt its entries."
            )
        _redis_module()
        self._url = url.strip()
        self._secret = client_secret
        self.fallback = fallback
        fallback_wait = getattr(fallback, "lock_timeout", None)
        self.lock_timeout = float(lock_timeout or fallback_wait or DEFAULT_REDIS_LOCK_TIMEOUT)
        self.lock_lease = lock_lease
        self.socket_timeout = socket_timeout
        self.url = redact_url(self._url)
        url_id = hashlib.sha256(self._url.encode("utf-8")).hexdigest()[:16]
        local = fallback.namespace
        self.namespace: str | None = None if local is None else f"redis:{url_id}:{local}"
        self._holding = threading.local()  # key ids whose locks this thread holds
        _client(self._url, socket_timeout)  # validates the URL now; connects lazily

    def __repr__(self) -> str:
        return f"RedisStore(url={self.url!r}, fallback={self.fallback!r})"

    # ------------------------------------------------------------------ the TokenStore contract

    def read(self, key: CacheKey) -> StoredEntry:
        """Redis's entry (its write time counts as an attempt: see :class:`.SharedEntry`) and the latest
        failure recorded here or in Redis (machines' clocks are assumed in step, as NTP keeps them);
        this machine's entry alone while Redis is unreachable. A token not on this machine yet is
        copied here."""
        local = self.fallback.read(key)
        shared, failure = None, None
        try:
            if not _is_down(self._url):
                shared, failure = self._get(key)
        except self._errors() as exc:
            self._unavailable(exc)
        if failure is not None and failure[0] > local.failed_at:
            local = dataclasses.replace(local, failed_at=failure[0], failure=failure[1])
        if shared is None:
            return local
        if local.token is not None and shared.token.expires_at < local.token.expires_at:
            return local  # an older entry (replayed, or written late) never replaces this machine's
        if local.token is None or local.token.value != shared.token.value:
            self._adopt(key, shared)
        last_attempt = max(shared.stored_at, local.last_attempt)
        return dataclasses.replace(local, token=shared.token, last_attempt=last_attempt)

    def write(self, key: CacheKey, token: AccessToken, *, last_attempt: float | None = None) -> None:
        """Store ``token`` in Redis (TTL: its remaining lifetime) and on this machine."""
        self.fallback.write(key, token, last_attempt=last_attempt)
        ttl_ms = int((token.expires_at - time.time()) * 1000)
        if ttl_ms <= 0 or _is_down(self._url):
            return
        try:
            blob = seal(self._secret, key, SharedEntry(token, time.time()))
            _client(self._url, self.socket_timeout).set(KEY_PREFIX + key.id, blob, px=ttl_ms)
        except self._errors() as exc:
            self._unavailable(exc)

    def record_failure(self, key: CacheKey, when: float, message: str) -> None:
        """Recorded here and in Redis, for every process of the fleet waiting on the fetch."""
        self.fallback.record_failure(key, when, message)
        if _is_down(self._url):
            return
        try:
            blob = seal_failure(self._secret, key, when, message)
            ttl_ms = int(FAILURE_TTL * 1000)
            _client(self._url, self.socket_timeout).set(FAILURE_PREFIX + key.id, blob, px=ttl_ms)
        except self._errors() as exc:
            self._unavailable(exc)

    def delete(self, key: CacheKey) -> bool:
        """Remove ``key``'s entry from Redis and from this machine."""
        had = self.fallback.delete(key)
        try:
            return bool(_client(self._url, self.socket_timeout).delete(KEY_PREFIX + key.id)) or had
        except self._errors() as exc:
            self._unavailable(exc)
            return had

    @contextlib.contextmanager
    def lock(self, key: CacheKey, *, blocking: bool) -> Iterator[bool | None]:
        """This machine's lock, then the fleet's Redis lock (its lease frees it should the holder die)."""
        with self.fallback.lock(key, blocking=blocking) as local:
            held = self._held()
            held.add(key.id)
            try:
                if local is False and not blocking:
                    yield False
                    return
                with self._redis_lock(key, blocking=blocking) as fleet:
                    yield local if fleet is None else fleet
            finally:
                held.discard(key.id)

    def wait_released(self, key: CacheKey, *, timeout: float) -> None:
        """Wait for this machine's lock (Redis sends no release notice: a caller that still finds no
        token then takes the fleet's lock, as before)."""
        self.fallback.wait_released(key, timeout=timeout)

    # ------------------------------------------------------------------ Redis

    @contextlib.contextmanager
    def _redis_lock(self, key: CacheKey, *, blocking: bool) -> Iterator[bool | None]:
        if _is_down(self._url):
            yield None
            return
        try:
            lock = _client(self._url, self.socket_timeout).lock(
                LOCK_PREFIX + key.id,
                timeout=self.lock_lease,
                sleep=0.05,
                blocking_timeout=self.lock_timeout,
                thread_local=False,  # renewed from another thread
            )
            started = time.monotonic()
            acquired = lock.acquire(blocking=blocking)
        except self._errors() as exc:
            self._unavailable(exc)
            yield None
            return
        self._available()
        if not acquired:
            if blocking:
                log.warning(
                    "Waited %.0f s for the Redis lock of the CARTO token for %s, held by a stuck process; "
                    "fetching a token without it",
                    time.monotonic() - started,
                    key.label,
                )
            yield False
            return
        stop = threading.Event()
        threading.Thread(target=_keep_leased, args=(lock, self.lock_lease, stop), daemon=True).start()
        try:
            yield True
        finally:
            stop.set()
            try:
                lock.release()
            except Exception as exc:  # expired lease or Redis gone: the lock frees itself
                log.debug("Releasing the Redis token lock failed: %s", type(exc).__name__)

    def _get(self, key: CacheKey) -> tuple[SharedEntry | None, tuple[float, str] | None]:
        """Redis's token entry and recorded failure for ``key``, in one round trip."""
        names = [KEY_PREFIX + key.id, FAILURE_PREFIX + key.id]
        answer: Any = _client(self._url, self.socket_timeout).mget(names)
        blob, failure_blob = answer
        self._available()
        failure = unseal_failure(self._secret, key, failure_blob) if isinstance(failure_blob, bytes) else None
        if not isinstance(blob, bytes):
            return None, failure
        entry = unseal(self._secret, key, blob)
        if entry is None:
            log.warning(
                "The Redis token cache entry for %s cannot be decrypted (written with another secret, or "
                "altered); ignoring it",
                key.label,
            )
        return entry, failure

    def _adopt(self, key: CacheKey, shared: SharedEntry) -> None:
        """Keep a copy of another machine's token here, under this machine's lock (skipped if busy)."""
        log.info(
            "CARTO token for %s taken from the Redis token cache at %s (fp=%s, expires in %.0f s)",
            key.label,
            self.url,
            shared.token.fingerprint,
            shared.token.expires_at - time.time(),
        )
        if key.id in self._held():
            self.fallback.write(key, shared.token)
            return
        with self.fallback.lock(key, blocking=False) as local:
            if local is not False:
                self.fallback.write(key, shared.token)

    def _held(self) -> set[str]:
        held: set[str] | None = getattr(self._holding, "keys", None)
        if held is None:
            held = self._holding.keys = set()
        return held

    @staticmethod
    def _errors() -> tuple[type[BaseException], ...]:
        """What a broken or unreachable Redis raises (never an error of a fetch)."""
        return (_redis_module().RedisError,)

    def _unavailable(self, exc: BaseException) -> None:
        with _STATE_LOCK:
            first = self._url not in _UNAVAILABLE
            _UNAVAILABLE[self._url] = time.monotonic() + RETRY_UNAVAILABLE_AFTER
        if first:
            log.warning(
                "The Redis token cache at %s is unavailable (%s: %s); using this machine's token cache "
                "only, so each machine fetches its own CARTO token",
                self.url,
                type(exc).__name__,
                exc,
            )

    def _available(self) -> None:
        with _STATE_LOCK:
            recovered = _UNAVAILABLE.pop(self._url, None) is not None
        if recovered:
            log.info("The Redis token cache at %s is reachable again", self.url)


def _keep_leased(lock: Any, lease: float, stop: threading.Event) -> None:
    """Renew ``lock``'s lease every third of it until ``stop``: a live holder keeps the lock however long
    its fetch takes (retries included); a dead one stops renewing and the lease runs out."""
    while not stop.wait(lease / 3):
        try:
            lock.reacquire()
        except Exception:  # lost, released meanwhile, or Redis gone: the lease runs out by itself
            return


def _is_down(url: str) -> bool:
    """Redis failed under :data:`RETRY_UNAVAILABLE_AFTER` seconds ago: go on without it until then."""
    with _STATE_LOCK:
        until = _UNAVAILABLE.get(url)
    return until is not None and time.monotonic() < until


class RedisTokenCache(TokenCache):
    """The token cache over a :class:`RedisStore` whose fallback is ``local``'s store: one token for
    every machine that reaches the same Redis. ``options`` are :class:`RedisStore`'s ``lock_timeout``
    (30 s), ``lock_lease`` (60 s) and ``socket_timeout`` (2 s)."""

    def __init__(self, url: str, client_secret: str, *, local: TokenCache, **options: float) -> None:
        self.redis = RedisStore(url, client_secret, fallback=local.storage, **options)
        super().__init__(self.redis)
        self.local = local
        self.url = self.redis.url

    def __repr__(self) -> str:
        return f"RedisTokenCache(url={self.url!r}, local={self.local!r})"
