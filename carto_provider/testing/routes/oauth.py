"""Interactive login on the emulator: ``GET /authorize``, the ``authorization_code`` grant of
``POST /oauth/token``, and API base URL discovery (``GET /accounts``, ``GET /config.yaml``).

``/authorize`` approves at once, as a user who is already logged in would be (no login page), after
checking the client, the PKCE parameters and the redirect URI like Auth0: an unknown client or an
unregistered redirect is answered 400 without redirecting; anything else wrong is redirected back as
``?error=...&state=...``. Loopback redirects are accepted on any port (RFC 8252 §7.3) so tests can use
free ports; CARTO's registered defaults are unchanged. Tests steer it through :func:`oauth_emulation`
(e.g. ``oauth_emulation(carto_emulator.state).deny = 1`` refuses the next login).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from carto_provider.testing.routes import state_of
from carto_provider.testing.routes.auth import AUDIENCE, GRANT_HANDLERS, oauth_error, token_response
from carto_provider.testing.routes.common import require_api_token
from carto_provider.testing.state import EmulatorState

router = APIRouter()

CARTO_PUBLIC_CLIENT_ID = "0dxb8HR3ATXCxJiPOJVHsLoHoAtbRX6u"
REGISTERED_REDIRECTS = ("http://localhost:10000/callback/", "https://app.carto.com/auth/token")
CODE_LIFETIME = 600
DENIED = "User did not authorize the request"
_B64URL_43 = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass
class IssuedCode:
    """An authorization code waiting to be exchanged."""

    client_id: str
    redirect_uri: str
    challenge: str
    org: str | None
    expires_at: float
    used: bool = False


@dataclass
class OAuthEmulation:
    """The emulator's interactive-login state (in ``EmulatorState.extensions["oauth"]``)."""

    #: public client id -> registered redirect URIs
    clients: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {CARTO_PUBLIC_CLIENT_ID: REGISTERED_REDIRECTS}
    )
    user_sub: str = "auth0|emulator-analyst"
    user_email: str = "analyst@example.com"
    #: refuse this many next authorizations with ``access_denied`` (the user clicked "Decline")
    deny: int = 0
    codes: dict[str, IssuedCode] = field(default_factory=dict)
    #: every /authorize query received, in order (for tests: organization, challenge method...)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)


def oauth_emulation(state: EmulatorState) -> OAuthEmulation:
    """The login state of an emulator (created on first use)."""
    return state.extension("oauth", OAuthEmulation)


def redirect_allowed(registered: tuple[str, ...], requested: str) -> bool:
    """Exact match, or a loopback http redirect that differs from a registered one only in its port."""
    if requested in registered:
        return True
    wanted = urlsplit(requested)
    if wanted.scheme != "http" or (wanted.hostname or "") not in _LOOPBACK:
        return False
    return any(
        (r := urlsplit(uri)).scheme == "http" and (r.hostname or "") in _LOOPBACK and r.path == wanted.path
        for uri in registered
    )


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _back(redirect_uri: str, state: str | None, **params: str) -> RedirectResponse:
    if state is not None:
        params["state"] = state
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)


def _authorize_problem(query: dict[str, str]) -> tuple[str, str] | None:
    """(error, description) for a request that must be redirected back with an error, if any."""
    if query.get("response_type") != "code":
        return "unsupported_response_type", "Unsupported response type: " + query.get("response_type", "")
    if query.get("code_challenge_method") != "S256":
        return "invalid_request", "code_challenge_method must be S256"
    if not _B64URL_43.fullmatch(query.get("code_challenge", "")):
        return "invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)"
    if query.get("audience") != AUDIENCE:
        return "access_denied", f"Service not found: {query.get('audience', '')}"
    org = query.get("organization")
    if org is not None and not re.fullmatch(r"org_[A-Za-z0-9]+", org):
        return "invalid_request", f"parameter organization is invalid: {org}"
    return None


@router.get("/authorize")
async def authorize(request: Request) -> Response:
    """Approve the login at once and redirect back with ``code`` and ``state`` (or an error)."""
    state = state_of(request)
    emulation = oauth_emulation(state)
    query = dict(request.query_params)
    client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
    with state.lock:
        emulation.authorize_requests.append(query)
        registered = emulation.clients.get(client_id)
    if registered is None:
        return oauth_error(400, "invalid_client", f"Unknown client: {client_id}")
    if not redirect_allowed(registered, redirect_uri):
        return oauth_error(400, "invalid_request", "The redirect_uri is not registered for this client")
    problem = _authorize_problem(query)
    if problem is not None:
        return _back(redirect_uri, query.get("state"), error=problem[0], error_description=problem[1])
    with state.lock:
        if emulation.deny > 0:
            emulation.deny -= 1
            denied = True
        else:
            denied = False
            code = secrets.token_urlsafe(24)
            emulation.codes[code] = IssuedCode(
                client_id,
                redirect_uri,
                query["code_challenge"],
                query.get("organization"),
                time.time() + CODE_LIFETIME,
            )
    if denied:
        state.record("oauth_denied", client_id)
        return _back(redirect_uri, query.get("state"), error="access_denied", error_description=DENIED)
    state.record("oauth_authorize", client_id)
    return _back(redirect_uri, query.get("state"), code=code)


async def _authorization_code(request: Request, form: dict[str, Any]) -> JSONResponse:
    """The ``authorization_code`` grant: code, PKCE verifier and redirect URI must all match."""
    state = state_of(request)
    emulation = oauth_emulation(state)
    client_id = form.get("client_id", "")
    state.record("oauth_token_request", client_id)
    if client_id not in emulation.clients:
        return oauth_error(401, "invalid_client", "Unknown client")
    audience = form.get("audience")
    if audience is not None and audience != AUDIENCE:
        return oauth_error(403, "access_denied", f"Service not found: {audience}")
    verifier = form.get("code_verifier", "")
    with state.lock:
        issued = emulation.codes.get(form.get("code", ""))
        if issued is None or issued.used or issued.expires_at < time.time() or issued.client_id != client_id:
            return oauth_error(403, "invalid_grant", "Invalid authorization code")
        issued.used = True  # single use, even when the rest fails
    if form.get("redirect_uri") != issued.redirect_uri:
        return oauth_error(403, "invalid_grant", "Redirect URI mismatch")
    if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(_s256(verifier), issued.challenge):
        return oauth_error(403, "invalid_grant", "Failed to verify code verifier")
    state.record("oauth_token", emulation.user_sub)
    claims: dict[str, Any] = {
        "sub": emulation.user_sub,
        "azp": client_id,
        "http://app.carto.com/email": emulation.user_email,
        "http://app.carto.com/account_id": "ac_emulator",
    }
    if issued.org:
        claims["org_id"] = issued.org
    return token_response(state, "oauth", emulation.user_sub, claims)


GRANT_HANDLERS["authorization_code"] = _authorization_code


@router.get("/accounts")
async def accounts(request: Request) -> dict[str, Any]:
    """The caller's account: the tenant domain is the emulator itself."""
    issued = require_api_token(request)
    state = state_of(request)
    state.record("accounts", issued.subject)
    emulation = oauth_emulation(state)
    return {
        "id": "ac_emulator",
        "tenant_id": "emulator",
        "tenant_domain": request.url.netloc,
        "email": emulation.user_email if issued.kind == "oauth" else None,
    }


@router.get("/config.yaml")
async def tenant_config(request: Request) -> PlainTextResponse:
    """The tenant's public configuration, with the API base URL (the emulator)."""
    base = f"{request.url.scheme}://{request.url.netloc}"
    state_of(request).record("tenant_config")
    return PlainTextResponse(
        f"apis:\n  baseUrl: {base}\n  workspaceUrl: {base}/workspace\n", media_type="application/yaml"
    )
