"""A fleet-wide token cache on Redis, layered over the per-machine :class:`~.cache.TokenCache`.

The file cache makes about one token per machine per token lifetime; a fleet of Celery workers, or
Kubernetes pods that live for one task, would make one per machine or per task. This cache shares
one token across every machine that reaches the same Redis (the broker a Celery deployment has):

1. the local cache answers if it can (memory, then the machine's file): no Redis round trip;
2. on a local miss, the local cache's single-flight (thread lock + file lock) lets one process per
   machine ask Redis; a usable entry there is decrypted and also stored locally;
3. otherwise that process takes a Redis lock (one per token key, auto-expiring), reads Redis again
   and fetches a token only if no other machine has stored one meanwhile, then stores it in Redis
   with the token's remaining lifetime as TTL.

Entries are encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the client secret,
salted with the entry's key id, and bound to that id, so the broker alone, or anyone who can read it,
cannot use a token, and an entry cannot be moved to another key or altered unnoticed.

Redis down or slow (2 s socket timeouts): one WARNING per process, then the local cache behaves as if
there were no Redis (still single-flight per machine). A lock holder that hangs delays the others by
``lock_timeout`` (30 s) at most, less than the local file lock's 60 s so local waiters never give up
first; then they fetch without it. Nothing here logs the Redis password or a token.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from carto_provider.auth.cache import CacheKey, TokenCache, TokenFetcher
from carto_provider.auth.tokens import MIN_ADVISORY_INTERVAL, AccessToken
from carto_provider.errors import CredentialsConfigError

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

KEY_PREFIX = "carto-provider:token:"
LOCK_PREFIX = "carto-provider:lock:"
#: Longest wait for another machine's fetch; shorter than the local file lock's wait (60 s).
DEFAULT_REDIS_LOCK_TIMEOUT = 30.0
#: The Redis lock expires by itself after this long, should its holder die while fetching.
LOCK_LEASE = 60.0
#: Connect and read timeout of every Redis command: a dead broker must not hold a task up.
SOCKET_TIMEOUT = 2.0
ENTRY_VERSION = b"\x01"
_NONCE_BYTES = 12
_HKDF_INFO = b"carto-provider/redis-token-cache/v1"
_INSTALL_HINT = "install the 'redis' extra: pip install 'airflow-provider-carto[redis]'"

_CLIENTS: dict[tuple[str, float], redis.Redis] = {}
_STATE_LOCK = threading.Lock()
_UNAVAILABLE: set[str] = set()  # URLs this process has warned about, until they recover (never logged)


def redact_url(url: str) -> str:
    """``url`` for logs and messages: the password replaced by ``***``, no query string."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostport = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        # A lone "redis://word@host" is often meant as the password: hide it too.
        netloc = f"{user}:***@{hostport}" if has_password else f"***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def derive_key(client_secret: str, key_id: str) -> bytes:
    """The 256-bit AES key of one cache entry: HKDF-SHA256 over the client secret, salted with the key id."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=key_id.encode("ascii"), info=_HKDF_INFO).derive(
        client_secret.encode("utf-8")
    )


@dataclass(frozen=True)
class SharedEntry:
    """What Redis holds for one key (encrypted): the token and when a process stored it."""

    token: AccessToken
    stored_at: float

    def acceptable(self, now: float, min_ttl: float, rejected: str | None) -> bool:
        """Good to use instead of fetching: fresh, or usable and stored under 30 s ago (so a token
        that is short-lived, or handed out again unchanged by the server, cannot cause a storm)."""
        if self.token.value == rejected:
            return False
        recent = now - self.stored_at < MIN_ADVISORY_INTERVAL
        return self.token.fresh(now, min_ttl) or (recent and self.token.usable(now, min_ttl))


def seal(client_secret: str, key: CacheKey, entry: SharedEntry) -> bytes:
    """Encrypt an entry for Redis: version byte, random nonce, AES-GCM ciphertext bound to ``key.id``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    plain = json.dumps({"token": entry.token.to_dict(), "stored_at": entry.stored_at}).encode("utf-8")
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(derive_key(client_secret, key.id)).encrypt(nonce, plain, key.id.encode("ascii"))
    return ENTRY_VERSION + nonce + sealed


def unseal(client_secret: str, key: CacheKey, blob: bytes) -> SharedEntry | None:
    """Decrypt what :func:`seal` wrote; None when it was written under another secret or key, altered,
    or is not an entry at all."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    header = len(ENTRY_VERSION) + _NONCE_BYTES
    if len(blob) <= header or not blob.startswith(ENTRY_VERSION):
        return None
    nonce, sealed = blob[len(ENTRY_VERSION) : header], blob[header:]
    try:
        doc = json.loads(AESGCM(derive_key(client_secret, key.id)).decrypt(nonce, sealed, key.id.encode()))
    except (InvalidTag, ValueError):
        return None
    token = AccessToken.from_dict(doc.get("token")) if isinstance(doc, dict) else None
    stored_at = doc.get("stored_at") if isinstance(doc, dict) else None
    if token is None or not isinstance(stored_at, int | float):
        return None
    return SharedEntry(token, float(stored_at))


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


class RedisTokenCache:
    """A token cache shared by every machine through Redis, with ``local`` in front of it.

    It has :class:`~.cache.TokenCache`'s ``get`` contract, so :class:`~.carto_auth.CartoAuth` takes
    either. ``client_secret`` is only used to derive the entries' encryption keys.
    """

    def __init__(
        self,
        url: str,
        client_secret: str,
        *,
        local: TokenCache,
        lock_timeout: float = DEFAULT_REDIS_LOCK_TIMEOUT,
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
        self.local = local
        self.lock_timeout = lock_timeout
        self.lock_lease = lock_lease
        self.socket_timeout = socket_timeout
        self.url = redact_url(self._url)
        _client(self._url, socket_timeout)  # validates the URL now; connects lazily

    def __repr__(self) -> str:
        return f"RedisTokenCache(url={self.url!r}, local={self.local!r})"

    # ------------------------------------------------------------------ the TokenCache contract

    def get(
        self,
        key: CacheKey,
        fetch: TokenFetcher,
        *,
        min_ttl: float = 0.0,
        rejected: str | None = None,
    ) -> AccessToken:
        """A usable token for ``key``: from this machine, else from Redis, else ``fetch`` called by one
        process of the whole fleet (arguments as in :meth:`.TokenCache.get`)."""
        return self.local.get(
            key, lambda: self._fleet_get(key, fetch, min_ttl, rejected), min_ttl=min_ttl, rejected=rejected
        )

    def peek(self, key: CacheKey) -> AccessToken | None:
        """This machine's cached token for ``key``, if any (no Redis round trip)."""
        return self.local.peek(key)

    # ------------------------------------------------------------------ the fleet layer

    def _fleet_get(
        self, key: CacheKey, fetch: TokenFetcher, min_ttl: float, rejected: str | None
    ) -> AccessToken:
        """Called by the local cache, under its locks, when this machine has no usable token."""
        client = _client(self._url, self.socket_timeout)
        try:
            shared = self._read(client, key)
            if shared is not None and shared.acceptable(time.time(), min_ttl, rejected):
                return self._adopted(key, shared)
            lock = client.lock(
                LOCK_PREFIX + key.id,
                timeout=self.lock_lease,
                sleep=0.05,
                blocking_timeout=self.lock_timeout,
            )
            started = time.monotonic()
            acquired = lock.acquire()
        except self._errors() as exc:
            self._unavailable(exc)
            return fetch()
        self._available()
        if not acquired:
            log.warning(
                "Waited %.0f s for the Redis lock of the CARTO token for %s, held by a stuck process; "
                "fetching a token without it",
                time.monotonic() - started,
                key.label,
            )
            return self._fetch_and_share(key, fetch)
        try:
            try:
                shared = self._read(client, key)
            except self._errors() as exc:
                self._unavailable(exc)
                shared = None
            if shared is not None and shared.acceptable(time.time(), min_ttl, rejected):
                return self._adopted(key, shared)
            return self._fetch_and_share(key, fetch)
        finally:
            try:
                lock.release()
            except Exception as exc:  # expired lease or Redis gone: the lock frees itself
                log.debug("Releasing the Redis token lock failed: %s", type(exc).__name__)

    def _read(self, client: redis.Redis, key: CacheKey) -> SharedEntry | None:
        blob = client.get(KEY_PREFIX + key.id)
        if not isinstance(blob, bytes):
            return None
        entry = unseal(self._secret, key, blob)
        if entry is None:
            log.warning(
                "The Redis token cache entry for %s cannot be decrypted (written with another secret, or "
                "altered); ignoring it",
                key.label,
            )
        return entry

    def _adopted(self, key: CacheKey, shared: SharedEntry) -> AccessToken:
        log.info(
            "CARTO token for %s taken from the Redis token cache at %s (fp=%s, expires in %.0f s)",
            key.label,
            self.url,
            shared.token.fingerprint,
            shared.token.expires_at - time.time(),
        )
        return shared.token

    def _fetch_and_share(self, key: CacheKey, fetch: TokenFetcher) -> AccessToken:
        token = fetch()
        self._put(key, token)
        return token

    def _put(self, key: CacheKey, token: AccessToken) -> None:
        ttl_ms = int((token.expires_at - time.time()) * 1000)
        if ttl_ms <= 0:
            return
        try:
            blob = seal(self._secret, key, SharedEntry(token, time.time()))
            _client(self._url, self.socket_timeout).set(KEY_PREFIX + key.id, blob, px=ttl_ms)
        except self._errors() as exc:
            self._unavailable(exc)

    # ------------------------------------------------------------------ Redis health

    @staticmethod
    def _errors() -> tuple[type[BaseException], ...]:
        """What a broken or unreachable Redis raises (never an error of ``fetch``)."""
        return (_redis_module().RedisError,)

    def _unavailable(self, exc: BaseException) -> None:
        with _STATE_LOCK:
            first = self._url not in _UNAVAILABLE
            _UNAVAILABLE.add(self._url)
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
            recovered = self._url in _UNAVAILABLE
            _UNAVAILABLE.discard(self._url)
        if recovered:
            log.info("The Redis token cache at %s is reachable again", self.url)
