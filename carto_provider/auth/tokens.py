"""Access tokens and the rules that decide when one must be refreshed."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

#: Never refresh more than this long before expiry, however long the token lives.
MAX_MANDATORY_MARGIN = 300.0
#: Start trying to refresh (without blocking, keeping the old token on failure) this early at most.
MAX_ADVISORY_WINDOW = 1800.0
#: At most one advisory refresh attempt per key in this many seconds, across processes.
MIN_ADVISORY_INTERVAL = 30.0
#: The longest ``expires_in`` believed: one year.
MAX_TOKEN_LIFETIME = 365 * 24 * 3600.0


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def checked_expires_in(value: Any) -> float:
    """A token answer's ``expires_in`` as seconds: a finite number in (0, :data:`MAX_TOKEN_LIFETIME`]
    (a digit string is accepted), else ValueError naming the field and the rule. ``NaN`` would make
    every call fetch a token, ``Infinity`` or 1e300 would trust one for ever."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not _is_finite_number(value) or not 0 < value <= MAX_TOKEN_LIFETIME:
        raise ValueError(
            f"the field 'expires_in' must be a finite number of seconds above 0 and at most "
            f"{MAX_TOKEN_LIFETIME:.0f} (one year), not {str(value)[:40]!r}"
        )
    return float(value)


def fingerprint(secret: str) -> str:
    """A short, stable, one-way identifier of a secret for logs: the first 8 hex digits of SHA-256."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT read *without* verifying it ({} when the token is not a JWT): only for
    showing who logged in and for an ``exp`` earlier than ``expires_in``, never to trust anyone."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying it; None when there is none."""
    exp = unverified_claims(token).get("exp")
    return float(exp) if exp is not None and _is_finite_number(exp) else None


@dataclass(frozen=True, repr=False)
class AccessToken:
    """A bearer token with its expiry in epoch seconds (UTC, from ``time.time()``).

    ``obtained_at`` is the local time taken *before* the token request was sent, so the computed
    expiry errs on the early side whatever the round trip took.
    """

    value: str
    expires_at: float
    obtained_at: float
    token_type: str = "Bearer"

    def __post_init__(self) -> None:
        # Precomputed for the hot path (CartoAuth.get_access_token): before this instant the token
        # is fresh for any caller that needs no particular remaining lifetime.
        object.__setattr__(
            self, "fresh_until", self.expires_at - max(self.advisory_window, self.mandatory_margin)
        )

    #: Epoch seconds before which the token is :meth:`fresh` (set in ``__post_init__``).
    fresh_until: float = field(init=False, repr=False, compare=False, default=0.0)

    @classmethod
    def given(cls, value: str | None, expiration: float | None) -> AccessToken | None:
        """A token handed to ``CartoAuth(...)`` with its ``expiration`` (epoch seconds), or None when
        either is missing (``carto-auth`` treats a token without expiration as expired)."""
        if not value or expiration is None or not _is_finite_number(expiration):
            return None
        now = time.time()
        return cls(value, float(expiration), min(now, float(expiration)))

    def __repr__(self) -> str:
        return f"AccessToken(fp={self.fingerprint}, expires_at={self.expires_at:.0f})"

    @property
    def fingerprint(self) -> str:
        """Short one-way identifier for logs."""
        return fingerprint(self.value)

    @property
    def lifetime(self) -> float:
        """Seconds between obtaining and expiry."""
        return max(0.0, self.expires_at - self.obtained_at)

    @functools.cached_property
    def mandatory_margin(self) -> float:
        """Refresh is required this many seconds before expiry: min(5 min, a quarter of the lifetime)."""
        return min(MAX_MANDATORY_MARGIN, self.lifetime / 4)

    @functools.cached_property
    def advisory_window(self) -> float:
        """Refresh is attempted (not required) this long before expiry: min(30 min, half the lifetime)."""
        return min(MAX_ADVISORY_WINDOW, self.lifetime / 2)

    def usable(self, now: float, min_ttl: float = 0.0) -> bool:
        """Good to hand out: outside the mandatory margin and valid for at least ``min_ttl`` seconds."""
        return self.expires_at - now > max(self.mandatory_margin, min_ttl)

    def fresh(self, now: float, min_ttl: float = 0.0) -> bool:
        """Usable and not yet in the advisory refresh window."""
        return self.usable(now, min_ttl) and self.expires_at - now > self.advisory_window

    @classmethod
    def from_token_response(cls, body: Any, *, requested_at: float) -> AccessToken:
        """Build a token from an OAuth token-endpoint response; ValueError names what is missing."""
        if not isinstance(body, dict):
            raise ValueError("the token response is not a JSON object")
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise ValueError("the token response has no access_token")
        expires_at = requested_at + checked_expires_in(body.get("expires_in"))
        claimed = jwt_expiry(value)
        if claimed is not None:
            expires_at = min(expires_at, claimed)
        return cls(
            value=value,
            expires_at=expires_at,
            obtained_at=requested_at,
            token_type=str(body.get("token_type") or "Bearer"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The cache-file form."""
        return {
            "access_token": self.value,
            "token_type": self.token_type,
            "obtained_at": self.obtained_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: Any) -> AccessToken | None:
        """Parse the cache-file form; None when anything is missing or of the wrong type."""
        if not isinstance(data, dict):
            return None
        value, expires_at, obtained_at = (
            data.get("access_token"),
            data.get("expires_at"),
            data.get("obtained_at"),
        )
        if not isinstance(value, str) or not value:
            return None
        if not all(_is_finite_number(x) for x in (expires_at, obtained_at)):
            return None
        return cls(value, float(expires_at), float(obtained_at), str(data.get("token_type") or "Bearer"))  # type: ignore[arg-type]
