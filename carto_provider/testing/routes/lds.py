"""``/v3/lds``: CARTO's Location Data Services on a small built-in gazetteer, with quota counting.

An address geocodes when it names a place of :data:`GAZETTEER` (case-insensitive; with ``country``,
only places of that country); anything else is an entry error ("No results found"), as CARTO reports
per-entry failures in a batch. Every geocoded address, reverse lookup, isoline and route spends one
request of :attr:`LDSSettings.quota`; a request that would go over it answers 429 ``{"error": "LDS
quota exceeded"}`` (CARTO's wording is not published). ``GET /v3/lds/stats`` answers
``{"lds_requests": {"used", "limit", "remaining", "period": "monthly"}}`` (CARTO's shape is not
published; this is the CLI's ``org stats`` shape). Isolines are circles, routes straight lines.
The Analytics Toolbox ``GEOCODE_TABLE`` procedure of the SQL route geocodes through :func:`lookup`.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from fastapi import APIRouter, Request

from carto_provider.testing.lds_data import GAZETTEER, MAX_BATCH, lds_api, lookup, spend
from carto_provider.testing.routes import state_of
from carto_provider.testing.routes.common import EmulatorHTTPError, require_api_token
from carto_provider.testing.routes.sql import json_body

router = APIRouter()


def _entry(address: Any, country: Any) -> dict[str, Any]:
    found = lookup(address, country)
    if found is None:
        return {"error": "No results found", "value": []}
    return {"value": [{"latitude": found[0], "longitude": found[1], "address": str(address)}]}


@router.get("/v3/lds/geocoding/geocode")
async def geocode(request: Request) -> list[dict[str, Any]]:
    """One address (``address``, ``country``, ``limit``): ``[{"value": [{latitude, longitude}]}]``."""
    require_api_token(request, "lds")
    address = request.query_params.get("address")
    if not address:
        raise EmulatorHTTPError(400, "Missing address")
    spend(state_of(request), 1)
    return [_entry(address, request.query_params.get("country"))]


@router.post("/v3/lds/geocoding/batch")
async def batch(request: Request) -> list[dict[str, Any]]:
    """Up to 10,000 addresses (strings or ``{address, country}``), answered in input order."""
    require_api_token(request, "lds")
    items = (await json_body(request)).get("addresses")
    if not isinstance(items, list) or not items:
        raise EmulatorHTTPError(400, "addresses must be a non-empty list")
    if len(items) > MAX_BATCH:
        raise EmulatorHTTPError(400, f"At most {MAX_BATCH} addresses per request")
    spend(state_of(request), len(items))
    state_of(request).record("lds_batch", str(len(items)))
    return [
        _entry(item.get("address"), item.get("country")) if isinstance(item, dict) else _entry(item, None)
        for item in items
    ]


def _point(text: str | None, what: str) -> tuple[float, float]:
    try:
        lon, lat = (float(v) for v in str(text).split(","))
    except ValueError:
        raise EmulatorHTTPError(400, f"{what} must be longitude,latitude") from None
    return lon, lat


@router.get("/v3/lds/geocoding/reverse")
async def reverse(request: Request) -> list[dict[str, Any]]:
    """The nearest gazetteer place to ``lat``, ``lon``."""
    require_api_token(request, "lds")
    try:
        lat, lon = float(request.query_params["lat"]), float(request.query_params["lon"])
    except (KeyError, ValueError):
        raise EmulatorHTTPError(400, "lat and lon are required numbers") from None
    spend(state_of(request), 1)
    name, (country, plat, plon) = min(GAZETTEER.items(), key=lambda kv: math.dist((lat, lon), kv[1][1:]))
    return [{"value": [{"address": name.title(), "country": country, "latitude": plat, "longitude": plon}]}]


@router.get("/v3/lds/isolines")
async def isolines(request: Request) -> list[dict[str, Any]]:
    """A circle per range around ``origin`` (GeoJSON polygons)."""
    require_api_token(request, "lds")
    lon, lat = _point(request.query_params.get("origin"), "origin")
    try:
        ranges = [int(r) for r in request.query_params.get("range", "300").split(",")]
    except ValueError:
        raise EmulatorHTTPError(400, "range must be numbers") from None
    spend(state_of(request), len(ranges))
    out = []
    for value in ranges:
        radius = value * (0.0001 if request.query_params.get("range_type", "time") == "time" else 0.00001)
        ring = [
            [lon + radius * math.cos(a / 8 * math.pi), lat + radius * math.sin(a / 8 * math.pi)]
            for a in range(17)
        ]
        out.append({"range": value, "geom": {"type": "Polygon", "coordinates": [ring]}})
    return out


@router.get("/v3/lds/routing")
async def routing(request: Request) -> dict[str, Any]:
    """A straight line from ``origin`` through ``waypoints`` (lat,lon;...) to ``destination``."""
    require_api_token(request, "lds")
    points = [_point(request.query_params.get("origin"), "origin")]
    for waypoint in filter(None, request.query_params.get("waypoints", "").split(";")):
        lat, lon = _point(waypoint, "waypoints")  # lat,lon
        points.append((lon, lat))
    points.append(_point(request.query_params.get("destination"), "destination"))
    spend(state_of(request), 1)
    meters = sum(math.dist(a, b) * 111_000 for a, b in itertools.pairwise(points))
    return {
        "distance": round(meters),
        "duration": round(meters / 13.9),
        "geom": {"type": "LineString", "coordinates": [list(p) for p in points]},
    }


@router.get("/v3/lds/stats")
async def stats(request: Request) -> dict[str, Any]:
    """The quota: requests used and left this period."""
    require_api_token(request, "lds")
    api = lds_api(state_of(request))
    with api.lock:
        used, limit = api.used, api.settings.quota
    return {
        "lds_requests": {"used": used, "limit": limit, "remaining": max(0, limit - used), "period": "monthly"}
    }
