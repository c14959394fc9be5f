"""PKCE (RFC 7636, S256 only) and the ``state`` value that binds a redirect to the login that asked for it.

Both values are single-use and come from :mod:`secrets`. The ``state`` comparison is constant-time, and
a missing ``state`` never matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

#: 64 random bytes give an 86-character verifier, inside RFC 7636's 43-128.
VERIFIER_BYTES = 64
STATE_BYTES = 32
CHALLENGE_METHOD = "S256"


def new_verifier() -> str:
    """A fresh code verifier: 86 characters of ``[A-Za-z0-9_-]``."""
    return secrets.token_urlsafe(VERIFIER_BYTES)


def challenge_of(verifier: str) -> str:
    """The S256 code challenge: base64url(SHA-256(verifier)) without padding (43 characters)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    """A fresh, unguessable ``state`` for one authorization request."""
    return secrets.token_urlsafe(STATE_BYTES)


def state_matches(expected: str, received: str | None) -> bool:
    """True when ``received`` is exactly ``expected`` (constant-time; None or empty never matches)."""
    if not received or not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8"))
