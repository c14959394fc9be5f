"""The emulator's HTTP routes, one module per CARTO API area.

Each module exposes ``router`` (a FastAPI ``APIRouter``); :data:`ROUTER_MODULES` lists them in the
order they are mounted. Routes reach the shared state through :func:`state_of`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from carto_provider.testing.state import EmulatorState

ROUTER_MODULES: list[str] = [
    "carto_provider.testing.routes.auth",
    "carto_provider.testing.routes.connections",
    "carto_provider.testing.routes.bigquery",
    "carto_provider.testing.routes.oauth",
    "carto_provider.testing.routes.sql",
    "carto_provider.testing.routes.imports",
    "carto_provider.testing.routes.tokens",
    "carto_provider.testing.routes.lds",
    "carto_provider.testing.routes.activity",
]


def state_of(request: Request) -> EmulatorState:
    """The emulator state behind this request."""
    return request.app.state.emulator_state
