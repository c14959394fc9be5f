"""``POST /oauth/token``: CARTO's Auth0 token endpoint (client-credentials grant here; later grants
plug into :data:`GRANT_HANDLERS`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from carto_provider.testing.routes import state_of
from carto_provider.testing.state import EmulatorState

router = APIRouter()

AUDIENCE = "carto-cloud-native-api"
SCOPE = "read:tokens write:tokens read:imports write:imports read:connections write:connections"

GrantHandler = Callable[[Request, dict[str, Any]], Awaitable[JSONResponse]]
GRANT_HANDLERS: dict[str, GrantHandler] = {}


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """Auth0's error body."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def token_response(state: EmulatorState, kind: str, subject: str, claims: dict[str, Any]) -> JSONResponse:
    token = state.issue_token(kind, subject, state.token_lifetime, claims)
    return JSONResponse(
        {"access_token": token, "scope": SCOPE, "expires_in": state.token_lifetime, "token_type": "Bearer"},
        headers={"Cache-Control": "no-store"},
    )


async def _client_credentials(request: Request, form: dict[str, Any]) -> JSONResponse:
    state = state_of(request)
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    state.record("m2m_token_request", client_id)
    if not client_id or not secret:
        return oauth_error(401, "access_denied", "Unauthorized")
    with state.lock:
        known = state.clients.get(client_id)
    if known is None or known != secret:
        return oauth_error(401, "access_denied", "Unauthorized")
    if form.get("audience") != AUDIENCE:
        return oauth_error(403, "access_denied", f"Service not found: {form.get('audience') or ''}")
    state.record("m2m_token", client_id)
    claims = {"azp": client_id, "gty": "client-credentials", "http://app.carto.com/account_id": "ac_emulator"}
    return token_response(state, "m2m", f"{client_id}@clients", claims)


GRANT_HANDLERS["client_credentials"] = _client_credentials


@router.post("/oauth/token")
async def oauth_token(request: Request) -> JSONResponse:
    """Exchange a grant for an access token (form-encoded, as CARTO's docs show; JSON accepted too)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        form = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
    else:
        form = {k: str(v) for k, v in (await request.form()).items()}
    grant = form.get("grant_type", "")
    if not grant:
        return oauth_error(400, "invalid_request", "Missing required parameter: grant_type")
    handler = GRANT_HANDLERS.get(grant)
    if handler is None:
        return oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")
    return await handler(request, form)
