"""Helpers shared by the emulator's routes: CARTO-shaped errors and bearer-token checks."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from carto_provider.testing.routes import state_of
from carto_provider.testing.state import IssuedToken


class EmulatorHTTPError(Exception):
    """Raised by routes; rendered as ``{"error": ..., "status": ...}`` like CARTO's API errors."""

    def __init__(self, status: int, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, "status": status, **extra}


def error_response(exc: EmulatorHTTPError, quirks: Any = None) -> JSONResponse:
    """The error as CARTO answers it; with the quirk ``error_lists``, ``error`` is a list and a
    ``hint`` comes along (@carto/api-client 0.5.34 ``src/models/common.ts``: ``error?: string |
    string[]; hint?: string; column_name?: string``)."""
    body = dict(exc.body)
    if quirks is not None and quirks.error_lists:
        body["error"] = [body["error"]]
        body.setdefault("hint", f"Check the request (HTTP {exc.status})")
    return JSONResponse(body, status_code=exc.status)


def bearer_token(request: Request) -> str | None:
    """The token from ``Authorization: Bearer`` or CARTO's ``access_token`` query parameter."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.query_params.get("access_token") or None


def require_api_token(request: Request, api: str | None = None, connection: str | None = None) -> IssuedToken:
    """The caller's valid CARTO token, or a CARTO-shaped 401.

    An API access token is accepted only by an ``api`` it allows (``sql``, ``imports``, ``lds``,
    ``maps``; None: an OAuth-only API such as connections or tokens) and, with ``connection``, only
    with a grant on that connection; otherwise 403 (CARTO's refusal bodies are not published for
    these cases; the grant one follows CARTO's CLI notes: "You don't have permissions to read this
    resource")."""
    token = bearer_token(request)
    if token is None:
        raise EmulatorHTTPError(401, "Token not defined")
    state = state_of(request)
    issued = state.check_token(token, kinds=("m2m", "oauth", "api"))
    if issued is None:
        raise EmulatorHTTPError(401, "Unauthorized: the token is invalid or has expired")
    if issued.kind == "api":
        state.record("api_token_use", issued.token_id)
        check_api_token(issued, api, connection)
    return issued


def check_api_token(issued: IssuedToken, api: str | None, connection: str | None = None) -> None:
    """403 unless the API access token ``issued`` may call ``api`` on ``connection``."""
    if api is None:
        raise EmulatorHTTPError(403, "This endpoint needs an OAuth Access Token, not an API Access Token")
    if api not in issued.allowed_apis:
        raise EmulatorHTTPError(403, f"The API Access Token is not allowed to use the {api} API")
    if connection is not None and not issued.grants_connection(connection):
        raise EmulatorHTTPError(403, "You don't have permissions to read this resource")
