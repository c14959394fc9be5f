"""``/emulator/quirks``: switch the emulator's unpleasant modes over HTTP (:mod:`..quirks`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from carto_provider.testing.routes import state_of
from carto_provider.testing.routes.common import EmulatorHTTPError

router = APIRouter()


@router.get("/emulator/quirks")
async def get_quirks(request: Request) -> dict[str, Any]:
    """The quirks in force."""
    return state_of(request).quirks.as_dict()


@router.post("/emulator/quirks")
async def set_quirks(request: Request) -> dict[str, Any]:
    """Change the quirks (a JSON object of name -> value); answers those in force."""
    state = state_of(request)
    try:
        changes = await request.json()
        if not isinstance(changes, dict):
            raise ValueError("send a JSON object of quirk names and values")
        with state.lock:
            return state.quirks.update(changes).as_dict()
    except ValueError as exc:
        raise EmulatorHTTPError(400, str(exc)) from None
