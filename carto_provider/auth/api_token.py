"""A :class:`~carto_provider.auth.CartoAuth` over a CARTO API access token (no token endpoint).

CARTO's docs (https://docs.carto.com/carto-for-developers/key-concepts/authentication-methods/api-access-tokens)
recommend API access tokens for "an import script or an ETL" on every plan, where M2M OAuth clients
need an Enterprise Large plan or above. Such a token is used as the bearer as it is: there is nothing
to refresh, so a refusal (HTTP 401 from the transport's one refresh, or 403) ends the call at once
with :class:`~carto_provider.errors.APITokenRefusedError` saying what to check. API access tokens
work with the SQL, Imports, LDS and Maps APIs only, never with ``/v3/connections``, the Tokens API
or Activity Data (CARTO docs, "CARTO APIs" reference). No Airflow, no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from carto_provider.auth.cache.policy import TokenCache
from carto_provider.auth.cache.stores import CacheKey, secret_digest
from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.tokens import MAX_TOKEN_LIFETIME, AccessToken, jwt_expiry
from carto_provider.errors import APITokenRefusedError, CartoAPIError, CredentialsConfigError

#: What to check when CARTO refuses an API access token.
CHECKS = (
    "check in CARTO Workspace > Developers > API Access Tokens that it exists and has not expired, that "
    "its grants include the CARTO connection (and the tables or queries) this call uses, that its "
    "allowed APIs include this API (sql, imports, lds, maps), and its referers; API access tokens "
    "cannot call OAuth-only APIs (connections, tokens, activity data): use an M2M connection for those."
)
#: The advice replacing the default one in API errors of an API access token connection.
ERROR_HINTS = {
    401: f" CARTO refused the API access token: {CHECKS}",
    403: f" CARTO refused the API access token for this call: {CHECKS}",
}


def refused_message(source: str, *, expired: bool) -> str:
    """The error of a refused API access token of ``source`` (e.g. ``connection 'carto_aat'``)."""
    why = "has expired" if expired else "was refused by CARTO (HTTP 401)"
    return f"The CARTO API access token of {source} {why}; {CHECKS}"


def api_token_auth(token: str, *, api_base_url: str | None, source: str, **options: Any) -> CartoAuth:
    """A ``CartoAuth`` handing out ``token`` and never calling a token endpoint.

    ``source`` names where the token came from in errors; ``options`` are ``CartoAuth._setup``'s
    (``retry_policy``, ``timeout``, ``on_secret``, ``settings``, ``bigquery_api_endpoint``).
    """
    value = (token or "").strip()
    if not value:
        raise CredentialsConfigError(f"{source} has no API access token; put it in the password field.")
    if not api_base_url:
        raise CredentialsConfigError(
            f"{source} has no API Base URL (host), e.g. https://gcp-us-east1.api.carto.com."
        )
    now = time.time()
    expires_at = jwt_expiry(value) or now + MAX_TOKEN_LIFETIME
    given = AccessToken(value, expires_at=expires_at, obtained_at=now)
    auth = CartoAuth._assemble(
        api_base_url=api_base_url,
        cache=TokenCache(None),
        cache_key=CacheKey.of(
            f"API access token of {source}", grant="api_token", secret=secret_digest(value)
        ),
        fetch_token=_refused(source, expires_at),
        given=given,
        error_hints=ERROR_HINTS,
        **options,
    )
    auth._mask_once(value)
    return auth


def _refused(source: str, expires_at: float) -> Callable[[], AccessToken]:
    """The ``fetch_token`` of an API access token: asked only once the token is refused or expired."""

    def fetch() -> AccessToken:
        expired = time.time() >= expires_at
        raise APITokenRefusedError(refused_message(source, expired=expired), status=None if expired else 401)

    return fetch


def probe_api_token(auth: CartoAuth, connection: str) -> str:
    """The connection test of an API access token: ``SELECT 1`` on the CARTO connection it should be
    granted (such a token cannot list ``/v3/connections``); a token refused there (403) is tried on
    the LDS quota (``GET /v3/lds/stats``, which spends no credits). Returns the success message."""
    where = f"Connected to CARTO at {auth.get_api_base_url()} with an API access token"
    try:
        auth.request("POST", f"/v3/sql/{quote(connection, safe='')}/query", json={"q": "SELECT 1"})
    except CartoAPIError as exc:
        if exc.status != 403:
            raise
        try:
            auth.request("GET", "/v3/lds/stats")
        except CartoAPIError:
            raise exc from None
        return f"{where}; it may use the LDS API (SELECT 1 on {connection!r} was refused: {exc})."
    return f"{where}; SELECT 1 ran on the CARTO connection {connection!r}."
