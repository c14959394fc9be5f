"""The Redis token store's entries: AES-256-GCM under a key derived from the client secret, bound to the key.

The key of one entry is HKDF-SHA256 over the client secret, salted with the entry's key id; the
ciphertext is bound to that id as associated data. So the broker alone, or anyone who can read it,
cannot use a token, and an entry cannot be moved to another key or altered unnoticed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from carto_provider.auth.tokens import AccessToken

if TYPE_CHECKING:
    from carto_provider.auth.cache.stores import CacheKey

ENTRY_VERSION = b"\x01"
_NONCE_BYTES = 12
_HKDF_INFO = b"carto-provider/redis-token-cache/v1"


def derive_key(client_secret: str, key_id: str) -> bytes:
    """The 256-bit AES key of one cache entry: HKDF-SHA256 over the client secret, salted with the key id."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=key_id.encode("ascii"), info=_HKDF_INFO).derive(
        client_secret.encode("utf-8")
    )


@dataclass(frozen=True)
class SharedEntry:
    """What Redis holds for one key (encrypted): the token and when a process stored it. The policy
    counts ``stored_at`` as a refresh attempt, so a usable token stored under 30 s ago is used instead
    of fetching: a short-lived token, or one the server hands out again unchanged, cannot cause a storm."""

    token: AccessToken
    stored_at: float


def seal(client_secret: str, key: CacheKey, entry: SharedEntry) -> bytes:
    """Encrypt an entry for Redis: version byte, random nonce, AES-GCM ciphertext bound to ``key.id``."""
    return seal_doc(client_secret, key, {"token": entry.token.to_dict(), "stored_at": entry.stored_at})


def unseal(client_secret: str, key: CacheKey, blob: bytes) -> SharedEntry | None:
    """Decrypt what :func:`seal` wrote; None when it was written under another secret or key, altered,
    or is not an entry at all."""
    doc = unseal_doc(client_secret, key, blob)
    token = AccessToken.from_dict(doc.get("token")) if doc is not None else None
    stored_at = doc.get("stored_at") if doc is not None else None
    if token is None or not isinstance(stored_at, int | float):
        return None
    return SharedEntry(token, float(stored_at))


def seal_failure(client_secret: str, key: CacheKey, failed_at: float, message: str) -> bytes:
    """Encrypt a failed fetch's time and message (free of secrets, but the broker need not read it)."""
    return seal_doc(client_secret, key, {"failed_at": failed_at, "failure": message[:1000]})


def unseal_failure(client_secret: str, key: CacheKey, blob: bytes) -> tuple[float, str] | None:
    """Decrypt what :func:`seal_failure` wrote: (when, message), or None."""
    doc = unseal_doc(client_secret, key, blob)
    failed_at = doc.get("failed_at") if doc is not None else None
    if doc is None or not isinstance(failed_at, int | float):
        return None
    return float(failed_at), str(doc.get("failure") or "")


def seal_doc(client_secret: str, key: CacheKey, doc: dict[str, Any]) -> bytes:
    """Version byte, random nonce, AES-GCM ciphertext of ``doc`` as JSON, bound to ``key.id``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    plain = json.dumps(doc).encode("utf-8")
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(derive_key(client_secret, key.id)).encrypt(nonce, plain, key.id.encode("ascii"))
    return ENTRY_VERSION + nonce + sealed


def unseal_doc(client_secret: str, key: CacheKey, blob: bytes) -> dict[str, Any] | None:
    """The JSON object :func:`seal_doc` sealed, or None (another secret or key, altered, not ours)."""
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
    return doc if isinstance(doc, dict) else None
