"""``/v3/connections``: the connection list and the CARTO Data Warehouse token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from carto_provider.testing.quirks import quirks_of
from carto_provider.testing.routes import state_of
from carto_provider.testing.routes.common import EmulatorHTTPError, require_api_token

router = APIRouter()


@router.get("/v3/connections")
async def list_connections(request: Request) -> Any:
    """The caller's connections: the CARTO Data Warehouse, and those a test declared (with their
    provider) in the SQL API settings. The quirks ``connections_provider_field`` (``provider`` or
    ``providerId``) and ``connections_page_size`` (``{"data", "page", "pageSize", "total"}``,
    pages from 1) change the shape; neither is published by CARTO."""
    from carto_provider.testing.routes.sql import sql_api

    require_api_token(request)
    state = state_of(request)
    quirks = quirks_of(state)
    field = quirks.connections_provider_field
    listed = [{"id": "carto-dw", "name": "carto_dw", field: "bigquery", "projectId": state.project_id}]
    for name, provider in sql_api(state).settings.connections.items():
        if name != "carto_dw":
            listed.append({"id": f"conn_{name}", "name": name, field: provider})
    size = quirks.connections_page_size
    if size is None:
        return listed
    try:
        page = max(1, int(request.query_params.get("page", "1")))
        size = max(1, int(request.query_params.get("pageSize", str(size))))
    except ValueError:
        raise EmulatorHTTPError(400, "page and pageSize must be integers") from None
    chunk = listed[(page - 1) * size : page * size]
    return {"data": chunk, "page": page, "pageSize": size, "total": len(listed)}


@router.get("/v3/connections/carto-dw/token")
async def carto_dw_token(request: Request) -> dict[str, str]:
    """A short-lived BigQuery token for the CARTO Data Warehouse project."""
    issued = require_api_token(request)
    state = state_of(request)
    state.record("dw_token", issued.subject)
    return {"projectId": state.project_id, "token": state.issue_dw_token()}
