"""The emulator's HTTP routes, one module per CARTO API area.

Each module exposes ``router`` (a FastAPI ``APIRouter``); :data:`ROUTER_MODULES` lists them in the
order they are mounted: the ones below first, then any other module of this folder (a new CARTO API's
routes are found without being listed). Routes reach the shared state through :func:`state_of`.
"""

from __future__ import annotations

import pkgutil
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
ROUTER_MODULES += sorted(
    f"{__name__}.{module.name}"
    for module in pkgutil.iter_modules(__path__)
    if module.name not in ("common", "background") and f"{__name__}.{module.name}" not in ROUTER_MODULES
)


def state_of(request: Request) -> EmulatorState:
    """The emulator state behind this request."""
    return request.app.state.emulator_state
