"""``CartoLDSHook``: CARTO's Location Data Services (geocoding, isolines, routing, the quota).

Every LDS request spends quota (credits), so each is sent at most once: retried only when CARTO
certainly did not act on it (429, 503, no connection), like job creation. Batch geocoding is split
into requests of at most 10,000 addresses (CARTO's limit). Works with an API access token allowed
to use ``lds`` (``auth_type`` ``api_token``) or an OAuth connection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from carto_provider.api.lds import (
    BATCH_LIMIT,
    BATCH_PATH,
    GEOCODE_PATH,
    ISOLINES_PATH,
    REVERSE_PATH,
    ROUTING_PATH,
    STATS_PATH,
    GeocodeResult,
    LDSQuota,
    batch_body,
    batch_results,
    chunks,
    geocode_params,
    locations,
    lon_lat,
)
from carto_provider.hooks.api import CartoAPIHook

log = logging.getLogger(__name__)


class CartoLDSHook(CartoAPIHook):
    """CARTO's LDS API over a ``carto`` connection."""

    def _paid(self, method: str, path: str, **kwargs: Any) -> Any:
        """One LDS request that spends quota: never repeated unless CARTO refused it."""
        return self.transport().request_json(
            method, path, at_most_once=True, policy=self.at_most_once_retry, **kwargs
        )

    def geocode(
        self, address: str, *, country: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The candidates ``{latitude, longitude, ...}`` for one address (``country``: ES, DE, ...)."""
        return locations(self._paid("GET", GEOCODE_PATH, params=geocode_params(address, country, limit)))

    def reverse(self, latitude: float, longitude: float, *, language: str | None = None) -> Any:
        """What is at a point (``GET /v3/lds/geocoding/reverse``), as CARTO's provider answers."""
        params: dict[str, Any] = {
            "lat": latitude,
            "lon": longitude,
            **({"language": language} if language else {}),
        }
        return self._paid("GET", REVERSE_PATH, params=params)

    def batch_geocode(
        self, addresses: Sequence[str], *, country: str | None = None, batch_size: int = BATCH_LIMIT
    ) -> list[GeocodeResult]:
        """Geocode ``addresses`` in order, ``batch_size`` (at most 10,000) per request; an address
        CARTO could not geocode has its ``error`` set instead of failing the call."""
        results: list[GeocodeResult] = []
        for chunk in chunks(list(addresses), batch_size):
            body = self._paid("POST", BATCH_PATH, json=batch_body(chunk, country))
            results += batch_results(chunk, body)
        failed = sum(1 for r in results if r.error)
        log.info("Geocoded %d address(es) with CARTO LDS, %d without a result", len(results), failed)
        return results

    def isolines(
        self,
        origin: Sequence[float],
        *,
        mode: str = "car",
        ranges: Sequence[int] = (300,),
        range_type: str = "time",
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Isolines around ``origin`` ``(longitude, latitude)`` for ``ranges`` (seconds or meters)."""
        params: dict[str, Any] = {
            "origin": lon_lat(origin),
            "mode": mode,
            "range": ",".join(str(int(r)) for r in ranges),
            "range_type": range_type,
        }
        if options:
            params["options"] = dict(options)
        return self._paid("GET", ISOLINES_PATH, params=_flat(params))

    def routing(
        self,
        origin: Sequence[float],
        destination: Sequence[float],
        *,
        mode: str = "car",
        waypoints: Sequence[Sequence[float]] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        """A route from ``origin`` to ``destination`` (``(longitude, latitude)``); ``waypoints`` are
        ``(latitude, longitude)``, as CARTO's docs say."""
        params: dict[str, Any] = {
            "origin": lon_lat(origin),
            "destination": lon_lat(destination),
            "mode": mode,
        }
        if waypoints:
            params["waypoints"] = ";".join(f"{float(lat)},{float(lon)}" for lat, lon in waypoints)
        if options:
            params["options"] = dict(options)
        return self._paid("GET", ROUTING_PATH, params=_flat(params))

    def quota(self) -> LDSQuota:
        """The LDS quota (``GET /v3/lds/stats``; a read, retried like any read)."""
        return LDSQuota.from_response(self._call("GET", STATS_PATH))


def _flat(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters with ``options`` as JSON text."""
    if "options" in params:
        import json

        params["options"] = json.dumps(params["options"], separators=(",", ":"))
    return params
