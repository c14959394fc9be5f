"""The OAuth client-credentials grant against CARTO's auth server."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import requests

from carto_provider.auth.config import AUDIENCE, M2MCredentials
from carto_provider.auth.errors import CredentialsError
from carto_provider.auth.http import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    error_detail,
    error_fields,
    send,
    unreachable_message,
)
from carto_provider.auth.tokens import AccessToken

_FIX_HINTS = {
    400: "Check the auth URL and the client id.",
    401: "Check the client id and client secret (CARTO Workspace > Developers > Credentials).",
    403: "Check that the M2M client is allowed to use the CARTO API audience and is not disabled.",
    404: "Check the auth URL: it should be the OAuth server's base URL, e.g. https://auth.carto.com.",
}


def token_error(response: requests.Response, *, what: str, client_id: str) -> CredentialsError:
    """A CredentialsError naming the server's ``error``/``error_description``, the status and a fix."""
    error, description = error_fields(response)
    detail = error_detail(response)
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


def unreachable_error(exc: requests.RequestException, *, url: str) -> CredentialsError:
    """A CredentialsError for an auth server that did not answer in time or at all."""
    return CredentialsError(
        unreachable_message(
            f"The CARTO auth server at {url}",
            exc,
            timed_out=isinstance(exc, requests.Timeout),
            hint="Check the auth URL and the network (proxy, firewall).",
        )
    )


def post_token_form(
    session: requests.Session,
    token_url: str,
    form: Mapping[str, str],
    *,
    auth_url: str,
    refused: Callable[[requests.Response], CredentialsError],
    policy: RetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> AccessToken:
    """POST a form-encoded token request and return the token; ``refused`` builds the error for any
    answer but 200 (every grant: client credentials here, the login's authorization code in oauth)."""
    requested_at = time.time()
    try:
        response = send(
            session,
            "POST",
            token_url,
            policy=policy,
            timeout=timeout,
            data=dict(form),
            headers={"Accept": "application/json"},
        )
    except requests.RequestException as exc:
        raise unreachable_error(exc, url=auth_url) from None
    if response.status_code != 200:
        raise refused(response)
    try:
        return AccessToken.from_token_response(response.json(), requested_at=requested_at)
    except ValueError as exc:
        raise CredentialsError(
            f"The CARTO auth server at {auth_url} sent an unusable token response ({exc}). "
            "Check the auth URL.",
            status=response.status_code,
        ) from None


def request_client_credentials_token(
    credentials: M2MCredentials,
    session: requests.Session,
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    audience: str = AUDIENCE,
) -> AccessToken:
    """POST ``grant_type=client_credentials`` to ``{auth_url}/oauth/token`` and return the token."""
    return post_token_form(
        session,
        credentials.token_url,
        {
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "audience": audience,
        },
        auth_url=credentials.auth_url,
        refused=lambda response: token_error(
            response, what="the client credentials", client_id=credentials.client_id
        ),
        policy=policy,
        timeout=timeout,
    )
