"""Interactive OAuth logins (authorization code + PKCE) for local development: the public client, the
cached login, and how Airflow tasks use it without ever prompting.

A login is made by ``carto-provider login`` or :meth:`CartoAuth.from_oauth` (see :mod:`.login`) and
cached in ``~/.carto-provider/token_oauth.json`` (private, atomic: the shared :class:`TokenCache`) under a
key made of the auth URL, client id, audience and SSO organization. Next to the token, the entry keeps
the login's API base URL and identity (``"login"`` in the entry), so ``carto-provider status`` and the
hook can use them. CARTO issues no refresh token for these logins: when one expires, a new interactive
login is the only way forward, which tasks never attempt (:mod:`.cached_login`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from carto_provider.api.responses import error_detail, error_fields
from carto_provider.api.retry import DEFAULT_RETRY, CartoRetryPolicy
from carto_provider.api.transport import DEFAULT_TIMEOUT
from carto_provider.auth.cache.policy import DEFAULT_LOCK_TIMEOUT, TokenCache
from carto_provider.auth.cache.stores import CacheKey
from carto_provider.auth.login._pkce import CHALLENGE_METHOD
from carto_provider.auth.m2m import post_token_form
from carto_provider.auth.settings import (
    AUDIENCE,
    CARTO_PUBLIC_CLIENT_ID,
    OAUTH_CACHE_FILENAME,
    AuthSettings,
    default_cache_path,
)
from carto_provider.auth.tokens import AccessToken
from carto_provider.auth.urls import check_url
from carto_provider.errors import CredentialsError

if TYPE_CHECKING:
    import httpx

#: The redirects CARTO registered for its public PKCE client (``CARTO_PUBLIC_CLIENT_ID``).
LOOPBACK_REDIRECT_URI = "http://localhost:10000/callback/"
PASTE_REDIRECT_URI = "https://app.carto.com/auth/token"


def _redirect_uri(uri: str, what: str) -> str:
    """A redirect URI: https, or http on loopback (port 0: any free port)."""
    check_url(uri, what=what, min_port=0)
    return uri


@dataclass(frozen=True)
class OAuthClient:
    """The OAuth client a login uses, and everything that makes its tokens differ; ``settings`` are
    the ones it was resolved with (discovery's accounts URL, the URL rules, the default auth URL)."""

    auth_url: str
    client_id: str = CARTO_PUBLIC_CLIENT_ID
    audience: str = AUDIENCE
    org: str | None = None
    redirect_uri: str = LOOPBACK_REDIRECT_URI
    paste_redirect_uri: str = PASTE_REDIRECT_URI
    settings: AuthSettings = field(default_factory=AuthSettings, compare=False, repr=False)

    @classmethod
    def resolve(
        cls,
        *,
        auth_url: str | None = None,
        client_id: str | None = None,
        org: str | None = None,
        redirect_uri: str | None = None,
        paste_redirect_uri: str | None = None,
        settings: AuthSettings | None = None,
    ) -> OAuthClient:
        """Fill the defaults from ``settings`` (without them, :meth:`AuthSettings.from_environment`):
        auth URL as for M2M (``$CARTO_AUTH_URL``), client id from ``$CARTO_OAUTH_CLIENT_ID`` or
        CARTO's public client; CARTO's registered redirects."""
        settings = settings or AuthSettings.from_environment()
        return cls(
            auth_url=settings.resolve_auth_url(auth_url),
            client_id=(client_id or settings.oauth_client_id).strip(),
            org=(org or "").strip() or None,
            redirect_uri=_redirect_uri(redirect_uri or LOOPBACK_REDIRECT_URI, "redirect URI"),
            paste_redirect_uri=_redirect_uri(paste_redirect_uri or PASTE_REDIRECT_URI, "paste redirect URI"),
            settings=settings,
        )

    @property
    def label(self) -> str:
        """A description for logs and ``status`` (no secrets)."""
        text = f"CARTO login at {self.auth_url}"
        if self.org:
            text += f" (organization {self.org})"
        if self.client_id != CARTO_PUBLIC_CLIENT_ID:
            text += f" (client {self.client_id})"
        return text

    @property
    def cache_key(self) -> CacheKey:
        """The login's entry in the token cache."""
        return CacheKey.of(
            self.label,
            grant="authorization_code",
            auth_url=self.auth_url,
            audience=self.audience,
            client_id=self.client_id,
            org=self.org,
        )

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"{self.auth_url}/oauth/token"

    def authorize_url(self, *, redirect_uri: str, challenge: str, state: str) -> str:
        """The page the user logs in on (``organization`` added for SSO)."""
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "audience": self.audience,
            "code_challenge": challenge,
            "code_challenge_method": CHALLENGE_METHOD,
            "state": state,
        }
        if self.org:
            params["organization"] = self.org
        return f"{self.auth_url}/authorize?{urlencode(params)}"


@dataclass(frozen=True)
class LoginInfo:
    """What a login knows besides its token: where the user's API is and who the user is."""

    api_base_url: str
    user: str | None = None  # e-mail when known, else the token's subject
    subject: str | None = None
    org: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The cache-entry form."""
        return {
            "api_base_url": self.api_base_url,
            "user": self.user,
            "subject": self.subject,
            "org": self.org,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LoginInfo | None:
        """Parse the cache-entry form; None when unusable."""
        if not isinstance(data, Mapping) or not isinstance(data.get("api_base_url"), str):
            return None
        text = {k: data.get(k) if isinstance(data.get(k), str) else None for k in ("user", "subject", "org")}
        return cls(api_base_url=data["api_base_url"], **text)


@dataclass(frozen=True, repr=False)
class LoginToken(AccessToken):
    """An interactive login's token with its :class:`LoginInfo` (kept in the cache entry as ``login``).

    There is no refresh token, so there is nothing to refresh ahead of expiry: the advisory window
    equals the mandatory margin, and a login is renewed only when it is about to expire.
    """

    login: LoginInfo | None = None

    @property
    def advisory_window(self) -> float:
        """No early refresh for logins (see the class docstring)."""
        return self.mandatory_margin

    def to_dict(self) -> dict[str, Any]:
        """The cache-file form, with the login's details."""
        data = super().to_dict()
        if self.login is not None:
            data["login"] = self.login.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Any) -> LoginToken | None:
        """Parse the cache-file form (entries without details give ``login=None``)."""
        token = super().from_dict(data)
        if not isinstance(token, LoginToken):
            return None
        return replace(token, login=LoginInfo.from_dict(data.get("login")))


def login_cache(
    path: str | os.PathLike[str] | None, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> TokenCache:
    """The token cache of interactive logins at ``path`` (None: in memory only)."""
    return TokenCache(path, lock_timeout=lock_timeout, token_class=LoginToken)


def default_login_cache_path(token_cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<token_cache_dir>/token_oauth.json``, by default ``~/.carto-auth/token_oauth.json``."""
    return default_cache_path(OAUTH_CACHE_FILENAME, token_cache_dir)


def _refused_code(response: httpx.Response, secrets: Sequence[str]) -> CredentialsError:
    error, description = error_fields(response, secrets)
    detail = error_detail(response, secrets)
    return CredentialsError(
        f"CARTO refused the login's authorization code (HTTP {response.status_code}: {detail}). "
        "Codes are single-use and expire within minutes: run the login again.",
        status=response.status_code,
        error=error,
        error_description=description,
    )


def exchange_code(
    client: OAuthClient,
    *,
    code: str,
    verifier: str,
    redirect_uri: str,
    policy: CartoRetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> AccessToken:
    """Trade an authorization code (and its PKCE verifier) for an access token."""
    form = {
        "grant_type": "authorization_code",
        "client_id": client.client_id,
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
        "audience": client.audience,
    }
    return post_token_form(
        client.token_url,
        form,
        auth_url=client.auth_url,
        refused=_refused_code,
        policy=policy,
        timeout=timeout,
    )


def login_command(client: OAuthClient, token_cache_dir: str | None = None) -> str:
    """The ``carto-provider login`` command line that creates the login ``client`` looks for."""
    parts = ["carto-provider login"]
    if client.org:
        parts.append(f"--org {client.org}")
    if client.auth_url != client.settings.auth_url:
        parts.append(f"--auth-url {client.auth_url}")
    if token_cache_dir:
        parts.append(f"--token-cache-dir {token_cache_dir}")
    return " ".join(parts)


def expiry_text(expires_at: float) -> str:
    """``2026-01-01 10:00 UTC``."""
    return dt.datetime.fromtimestamp(expires_at, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
