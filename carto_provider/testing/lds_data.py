"""The emulator's LDS data: a small gazetteer, the quota, and the Analytics Toolbox ``GEOCODE_TABLE``
procedure the SQL route runs (see ``routes/lds.py`` for the HTTP side)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from carto_provider.testing.routes.common import EmulatorHTTPError
from carto_provider.testing.state import EmulatorState

#: name -> (country, latitude, longitude)
GAZETTEER: dict[str, tuple[str, float, float]] = {
    "madrid": ("ES", 40.4168, -3.7038),
    "barcelona": ("ES", 41.3874, 2.1686),
    "valencia": ("ES", 39.4699, -0.3763),
    "sevilla": ("ES", 37.3891, -5.9845),
    "bilbao": ("ES", 43.2630, -2.9350),
    "new york": ("US", 40.7128, -74.0060),
    "boston": ("US", 42.3601, -71.0589),
    "london": ("GB", 51.5072, -0.1276),
    "paris": ("FR", 48.8566, 2.3522),
    "berlin": ("DE", 52.5200, 13.4050),
}
MAX_BATCH = 10_000


@dataclass
class LDSSettings:
    """How the emulated LDS behaves (tests change ``lds_api(state).settings``)."""

    quota: int = 10_000


@dataclass
class LDSAPI:
    """The LDS state of one emulator: the requests spent."""

    settings: LDSSettings = field(default_factory=LDSSettings)
    used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def lds_api(state: EmulatorState) -> LDSAPI:
    """The emulator's LDS state, created on first use."""
    return state.extension("lds_api", LDSAPI)


def spend(state: EmulatorState, requests: int) -> None:
    """Count ``requests`` against the quota, or refuse them all (429) when they would exceed it."""
    api = lds_api(state)
    with api.lock:
        if api.used + requests > api.settings.quota:
            raise EmulatorHTTPError(429, "LDS quota exceeded")
        api.used += requests


def lookup(address: Any, country: Any = None) -> tuple[float, float] | None:
    """``(latitude, longitude)`` of the first gazetteer place named in ``address``, or None."""
    text = str(address or "").lower()
    wanted = str(country).upper() if country else None
    for name, (place_country, lat, lon) in GAZETTEER.items():
        if name in text and wanted in (None, place_country):
            return lat, lon
    return None


# ------------------------------------------------------------------------------------- Analytics Toolbox

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TABLE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+")


def geocode_table(state: EmulatorState, arguments: list[Any]) -> None:
    """CARTO's Analytics Toolbox ``GEOCODE_TABLE(api_base_url, api_access_token, input_table,
    address_column, geom_column, country, options)`` (BigQuery signature, CARTO docs "lds" module):
    adds ``geom`` (GEOGRAPHY) and ``carto_geocode_metadata`` (STRING) to the table, geocoded on the
    gazetteer. The token must be an API access token allowed to use LDS; each row spends one request."""
    from carto_provider.testing.warehouse import WarehouseError, get_warehouse

    if len(arguments) < 4:
        raise WarehouseError(
            "GEOCODE_TABLE(api_base_url, api_access_token, input_table, address_column, ...)"
        )
    _, token, table, column, *rest = [*arguments, None, None, None][:7]
    issued = state.check_token(str(token or ""), kinds=("api",))
    if issued is None or "lds" not in issued.allowed_apis:
        raise WarehouseError(
            "GEOCODE_TABLE: the API access token is invalid or not allowed to use the LDS API"
        )
    geom = rest[0] or "geom"
    table = str(table or "").replace("`", "")
    if not _TABLE.fullmatch(table) or not all(_IDENTIFIER.fullmatch(str(c)) for c in (column, geom)):
        raise WarehouseError(
            "GEOCODE_TABLE: input_table must be project.dataset.table and columns plain names"
        )
    warehouse = get_warehouse(state)
    found = warehouse.execute(f"SELECT `{column}` AS address FROM `{table}`").rows  # noqa: S608 - checked
    try:
        spend(state, len(found))
    except EmulatorHTTPError as exc:
        raise WarehouseError(f"GEOCODE_TABLE: {exc}") from None
    warehouse.execute(f"ALTER TABLE `{table}` ADD COLUMN IF NOT EXISTS `{geom}` GEOGRAPHY")
    warehouse.execute(f"ALTER TABLE `{table}` ADD COLUMN IF NOT EXISTS carto_geocode_metadata STRING")
    for address in {row["address"] for row in found if row["address"] is not None}:
        point = lookup(address, rest[1] or None)
        metadata = json.dumps({"provider": "carto-emulator"} if point else {"error": "No results found"})
        warehouse.execute(
            f"UPDATE `{table}` SET `{geom}` = {'ST_GEOGPOINT(@lon, @lat)' if point else 'NULL'}, "  # noqa: S608
            f"carto_geocode_metadata = @metadata WHERE `{column}` = @address",
            {
                "address": address,
                "metadata": metadata,
                **({"lat": point[0], "lon": point[1]} if point else {}),
            },
        )
    state.record("at_geocode_table", issued.token_id)
