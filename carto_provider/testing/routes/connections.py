"""``/v3/connections``: the connection list and the CARTO Data Warehouse token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from carto_provider.testing.routes import state_of
from carto_provider.testing.routes.common import require_api_token

router = APIRouter()


@router.get("/v3/connections")
async def list_connections(request: Request) -> list[dict[str, Any]]:
    """The caller's connections: the CARTO Data Warehouse, and those a test declared (with their
    provider) in the SQL API settings."""
    from carto_provider.testing.routes.sql import sql_api

    require_api_token(request)
    state = state_of(request)
    listed = [{"id": "carto-dw", "name": "carto_dw", "provider": "bigquery", "projectId": state.project_id}]
    for name, provider in sql_api(state).settings.connections.items():
        if name != "carto_dw":
            listed.append({"id": f"conn_{name}", "name": name, "provider": provider})
    return listed


@router.get("/v3/connections/carto-dw/token")
async def carto_dw_token(request: Request) -> dict[str, str]:
    """A short-lived BigQuery token for the CARTO Data Warehouse project."""
    issued = require_api_token(request)
    state = state_of(request)
    state.record("dw_token", issued.subject)
    return {"projectId": state.project_id, "token": state.issue_dw_token()}
