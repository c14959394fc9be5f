"""The OAuth client-credentials grant against CARTO's auth server."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from carto_provider.api.responses import error_detail, error_fields
from carto_provider.api.retry import DEFAULT_RETRY, CartoRetryPolicy
from carto_provider.api.transport import DEFAULT_TIMEOUT
from carto_provider.api.untrusted import parse_json, redact
from carto_provider.auth._http import Refusal, auth_flow_call
from carto_provider.auth.cache.stores import CacheKey, secret_digest
from carto_provider.auth.settings import AUDIENCE, M2MCredentials
from carto_provider.auth.tokens import AccessToken
from carto_provider.errors import CredentialsError

if TYPE_CHECKING:
    import httpx

#: What to check when the auth server cannot be used at all (no answer, a redirect, an unusable answer).
AUTH_URL_HINT = (
    "Check the auth URL (the OAuth server itself, e.g. https://auth.carto.com) and the network "
    "(proxy, firewall)."
)
_FIX_HINTS = {
    400: "Check the auth URL and the client id.",
    401: "Check the client id and client secret (CARTO Workspace > Developers > Credentials).",
    403: "Check that the M2M client is allowed to use the CARTO API audience and is not disabled.",
    404: "Check the auth URL: it should be the OAuth server's base URL, e.g. https://auth.carto.com.",
}


def token_error(
    response: httpx.Response, *, what: str, client_id: str, secrets: Iterable[str | None] = ()
) -> CredentialsError:
    """A CredentialsError naming the server's ``error``/``error_description`` (secrets redacted), the
    status and a fix."""
    error, description = error_fields(response, secrets)
    detail = error_detail(response, secrets)
    hint = _FIX_HINTS.get(response.status_code, "")
    if error in ("invalid_client", "access_denied", "unauthorized_client") and response.status_code in (
        400,
        401,
        403,
    ):
        hint = _FIX_HINTS[401]
    message = f"CARTO refused {what} for client {client_id!r} (HTTP {response.status_code}: {detail})."
    return CredentialsError(
        f"{message} {hint}".strip(),
        status=response.status_code,
        error=error,
        error_description=description,
    )


def post_token_form(
    token_url: str,
    form: Mapping[str, str],
    *,
    auth_url: str,
    refused: Refusal,
    secret_fields: Sequence[str] = ("client_secret", "code", "code_verifier"),
    policy: CartoRetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> AccessToken:
    """POST a form-encoded token request and return the token (every grant: client credentials here,
    the login's authorization code in :mod:`.oauth`).

    Never follows a redirect; reads at most :data:`~.untrusted.MAX_BODY_BYTES`; ``refused`` builds
    the error for any other answer but 200, given the values of ``secret_fields`` to redact from the
    server's text (see :func:`~.http.auth_flow_call`).
    """
    import httpx  # noqa: F401  (loaded before the clock is read: its first import is not network time)

    secrets = [form[name] for name in secret_fields if form.get(name)]
    requested_at = time.time()
    response = auth_flow_call(
        "POST",
        token_url,
        where=f"The CARTO auth server at {auth_url}",
        hint=AUTH_URL_HINT,
        refused=refused,
        secrets=secrets,
        policy=policy,
        timeout=timeout,
        data=form,
        headers={"Accept": "application/json"},
    )
    try:
        body = parse_json(response.content)
        token = AccessToken.from_token_response(body, requested_at=requested_at)
    except ValueError as exc:
        raise _unusable(auth_url, redact(str(exc), secrets), response.status_code) from None
    return token


def _unusable(auth_url: str, why: str, status: int | None) -> CredentialsError:
    return CredentialsError(
        f"The CARTO auth server at {auth_url} sent an unusable token response ({why}). Check the auth URL.",
        status=status,
    )


def request_client_credentials_token(
    credentials: M2MCredentials,
    *,
    policy: CartoRetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    audience: str = AUDIENCE,
) -> AccessToken:
    """POST ``grant_type=client_credentials`` to ``{auth_url}/oauth/token`` and return the token."""
    return post_token_form(
        credentials.token_url,
        {
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "audience": audience,
        },
        auth_url=credentials.auth_url,
        refused=lambda response, secrets: token_error(
            response, what="the client credentials", client_id=credentials.client_id, secrets=secrets
        ),
        policy=policy,
        timeout=timeout,
    )


def m2m_cache_key(credentials: M2MCredentials, *, audience: str = AUDIENCE) -> CacheKey:
    """The cache key of an M2M client: everything that changes the token, with the secret hashed."""
    return CacheKey.of(
        f"M2M client {credentials.client_id} at {credentials.auth_url}",
        grant="client_credentials",
        auth_url=credentials.auth_url,
        audience=audience,
        client_id=credentials.client_id,
        secret=secret_digest(credentials.client_secret),
        api_base_url=credentials.api_base_url,
    )
