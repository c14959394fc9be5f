"""``/v3/tokens``: CARTO's Tokens API, minting API access tokens whose grants the emulator enforces.

Shapes (CARTO docs, Tokens API, and CARTO's backend guide ``carto-for-developers-guides``
``integrate-existing-app/backend/index.ts``): the body is ``{"grants": [{"connection_name",
"source"}], "allowed_apis": [...], "referers": [...], "expiration_date"?}``; the reply carries
``token`` (and, as CARTO's CLI prints it, ``id`` and ``grants``). These endpoints take an OAuth
access token only: an API access token is refused with 403. What CARTO does not publish (the list's
wrapper, the format of ``expiration_date``, the DELETE reply) is the emulator's choice: a bare
array, ISO 8601, 204. The SQL, Imports and LDS routes then accept a token only for the APIs it
allows and the connections it has a grant on (sources are not checked).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from carto_provider.testing.routes import state_of
from carto_provider.testing.routes.common import EmulatorHTTPError, require_api_token
from carto_provider.testing.routes.sql import json_body, sql_api
from carto_provider.testing.state import EmulatorState, IssuedToken

router = APIRouter()

ALLOWED_APIS = frozenset({"sql", "maps", "imports", "lds"})


def _iso(epoch: float) -> str | None:
    if epoch == float("inf"):
        return None
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")


def render(token: str, issued: IssuedToken) -> dict[str, Any]:
    """An API access token as the Tokens API shows it."""
    return {
        "token": token,
        "id": issued.token_id,
        "grants": [{"connection_name": c, "source": s} for c, s in issued.grants],
        "allowed_apis": sorted(issued.allowed_apis),
        "referers": list(issued.referers),
        "expiration_date": _iso(issued.expires_at),
        "created_at": _iso(issued.created_at),
    }


def _grants(state: EmulatorState, raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list) or not raw:
        raise EmulatorHTTPError(400, "grants must be a non-empty list of {connection_name, source}")
    grants = []
    for grant in raw:
        if not isinstance(grant, dict) or not grant.get("connection_name") or not grant.get("source"):
            raise EmulatorHTTPError(400, "each grant needs a connection_name and a source")
        if grant["connection_name"] not in sql_api(state).settings.connections:
            raise EmulatorHTTPError(400, f"Connection not found: {grant['connection_name']}")
        grants.append((str(grant["connection_name"]), str(grant["source"])))
    return tuple(grants)


def _expiration(raw: Any) -> float | None:
    if raw in (None, ""):
        return None
    try:
        when = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise EmulatorHTTPError(400, "expiration_date must be an ISO 8601 date and time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    if when.timestamp() <= time.time():
        raise EmulatorHTTPError(400, "expiration_date must be in the future")
    return when.timestamp()


def mint(state: EmulatorState, subject: str, body: dict[str, Any]) -> tuple[str, IssuedToken]:
    """Create an API access token from a Tokens API body (also used by the demo's set-up)."""
    apis = body.get("allowed_apis") or []
    if not isinstance(apis, list) or not apis or not set(apis) <= ALLOWED_APIS:
        raise EmulatorHTTPError(400, f"allowed_apis must be a non-empty subset of {sorted(ALLOWED_APIS)}")
    referers = body.get("referers") or []
    if not isinstance(referers, list) or not all(isinstance(r, str) for r in referers):
        raise EmulatorHTTPError(400, "referers must be a list of domains")
    return state.issue_api_token(
        subject,
        grants=_grants(state, body.get("grants")),
        allowed_apis=frozenset(apis),
        referers=tuple(referers),
        expires_at=_expiration(body.get("expiration_date")),
    )


def _owned(state: EmulatorState, subject: str) -> list[tuple[str, IssuedToken]]:
    with state.lock:
        found = [(t, i) for t, i in state.tokens.items() if i.kind == "api" and i.subject == subject]
    return [(t, i) for t, i in found if i.expires_at > time.time()]


def _find(request: Request, token: str) -> tuple[EmulatorState, IssuedToken]:
    issued = require_api_token(request)
    state = state_of(request)
    for value, found in _owned(state, issued.subject):
        if token in (value, found.token_id):
            return state, found
    raise EmulatorHTTPError(404, "Token not found")


@router.post("/v3/tokens")
async def create_token(request: Request) -> dict[str, Any]:
    """Mint an API access token (OAuth access tokens only)."""
    issued = require_api_token(request)
    state = state_of(request)
    token, created = mint(state, issued.subject, await json_body(request))
    state.record("api_token_created", created.token_id)
    return render(token, created)


@router.get("/v3/tokens")
async def list_tokens(request: Request) -> list[dict[str, Any]]:
    """The caller's API access tokens, newest first (a bare array)."""
    issued = require_api_token(request)
    owned = _owned(state_of(request), issued.subject)
    return [render(t, i) for t, i in sorted(owned, key=lambda ti: ti[1].created_at, reverse=True)]


@router.get("/v3/tokens/{token}")
async def get_token(request: Request, token: str) -> dict[str, Any]:
    """One API access token (by its value, or its id)."""
    state, found = _find(request, token)
    with state.lock:
        value = next(t for t, i in state.tokens.items() if i is found)
    return render(value, found)


@router.delete("/v3/tokens/{token}")
async def delete_token(request: Request, token: str) -> Response:
    """Revoke an API access token: the APIs answer 401 to it from now on."""
    state, found = _find(request, token)
    with state.lock:
        for value in [t for t, i in state.tokens.items() if i is found]:
            del state.tokens[value]
    state.record("api_token_revoked", found.token_id)
    return Response(status_code=204)
