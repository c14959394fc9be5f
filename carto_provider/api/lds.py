"""CARTO's Location Data Services (LDS) API as data: paths, parameters, and readers of its replies.

Endpoints (CARTO docs, LDS API reference): ``GET /v3/lds/geocoding/geocode``, ``GET
/v3/lds/geocoding/reverse``, ``POST /v3/lds/geocoding/batch`` ("up to 10,000 in one request ... results
come back in the same order as the input, and a failed address returns an error on its entry"),
``GET /v3/lds/isolines``, ``GET /v3/lds/routing`` and ``GET /v3/lds/stats`` (the quota). Geocode
parameters and reply (an array whose first entry's ``value`` lists ``{latitude, longitude}``) follow
CARTO's client code (``@carto/react-api`` ``packages/react-api/src/api/lds.js``). **Not published**:
the batch body (sent as ``{"addresses": [{"address", "country"?}]}``), the quota reply (read here from
any object with ``used`` and ``limit``, or ``remaining``), and provider-specific reply fields ("Response
fields also vary by provider"), so every reader is tolerant. No I/O and no Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

GEOCODE_PATH = "/v3/lds/geocoding/geocode"
REVERSE_PATH = "/v3/lds/geocoding/reverse"
BATCH_PATH = "/v3/lds/geocoding/batch"
ISOLINES_PATH = "/v3/lds/isolines"
ROUTING_PATH = "/v3/lds/routing"
STATS_PATH = "/v3/lds/stats"
#: The most addresses CARTO geocodes in one batch request.
BATCH_LIMIT = 10_000
#: How deep the quota reader looks for the numbers.
_QUOTA_DEPTH = 3


def lon_lat(point: Sequence[float]) -> str:
    """``origin``/``destination`` text: longitude,latitude (CARTO docs; waypoints are lat,lon)."""
    lon, lat = (float(v) for v in point)
    return f"{lon},{lat}"


def geocode_params(address: str, country: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """The query of ``GET /v3/lds/geocoding/geocode`` (``country``: ISO-3166 alpha-2, e.g. ES)."""
    if not str(address or "").strip():
        raise ValueError("An address to geocode is required.")
    params: dict[str, Any] = {"address": address}
    if country:
        params["country"] = country
    if limit:
        params["limit"] = int(limit)
    return params


def batch_body(addresses: Sequence[str], country: str | None = None) -> dict[str, Any]:
    """The body of one ``POST /v3/lds/geocoding/batch`` (at most :data:`BATCH_LIMIT` addresses)."""
    if len(addresses) > BATCH_LIMIT:
        raise ValueError(f"CARTO geocodes at most {BATCH_LIMIT} addresses per batch request.")
    return {"addresses": [{"address": a, **({"country": country} if country else {})} for a in addresses]}


def chunks(items: Sequence[str], size: int = BATCH_LIMIT) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``size`` (never above CARTO's limit)."""
    if not 0 < size <= BATCH_LIMIT:
        raise ValueError(f"The batch size must be between 1 and {BATCH_LIMIT}.")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def locations(entry: Any) -> list[dict[str, Any]]:
    """The ``{latitude, longitude, ...}`` candidates of one geocode answer or batch entry."""
    if isinstance(entry, list):
        entry = entry[0] if entry else {}
    value = entry.get("value") if isinstance(entry, dict) else None
    if isinstance(value, dict):
        value = [value]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


@dataclass(frozen=True)
class GeocodeResult:
    """One address geocoded: the first candidate's coordinates, or CARTO's error for it."""

    address: str
    latitude: float | None = None
    longitude: float | None = None
    error: str | None = None

    @classmethod
    def of(cls, address: str, entry: Any) -> GeocodeResult:
        """Read a batch entry (or a single geocode answer) for ``address``."""
        error = entry.get("error") if isinstance(entry, dict) else None
        found = locations(entry)
        if error or not found:
            return cls(address, error=str(error or "no result")[:500])
        first = found[0]
        try:
            return cls(address, float(first["latitude"]), float(first["longitude"]))
        except (KeyError, TypeError, ValueError):
            return cls(address, error="the answer has no latitude/longitude")

    def row(self) -> dict[str, Any]:
        """A JSON-safe row (XCom, a table)."""
        return {
            "address": self.address,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "error": self.error,
        }


def batch_results(addresses: Sequence[str], body: Any) -> list[GeocodeResult]:
    """A batch reply (an array in input order; ``{"results"|"data": [...]}`` accepted) read for
    ``addresses``; missing entries count as errors."""
    items = body
    if isinstance(body, dict):
        items = next((body[k] for k in ("results", "data", "items") if isinstance(body.get(k), list)), [])
    items = items if isinstance(items, list) else []
    return [
        GeocodeResult.of(a, items[i]) if i < len(items) else GeocodeResult(a, error="missing from the reply")
        for i, a in enumerate(addresses)
    ]


@dataclass(frozen=True)
class LDSQuota:
    """LDS usage: ``used`` and ``limit`` requests (None when CARTO did not say); ``body`` as sent."""

    used: int | None
    limit: int | None
    remaining: int | None
    body: Any = field(default=None, repr=False)

    @classmethod
    def from_response(cls, body: Any) -> LDSQuota:
        """Read ``GET /v3/lds/stats`` tolerantly (its shape is not published)."""
        found = _numbers(body, _QUOTA_DEPTH)
        used, limit, remaining = (found.get(k) for k in ("used", "limit", "remaining"))
        if remaining is None and used is not None and limit is not None:
            remaining = max(0, limit - used)
        return cls(used, limit, remaining, body)


def _numbers(body: Any, depth: int) -> dict[str, int]:
    """The first object (breadth-first, ``depth`` levels) with ``used``/``limit``/``remaining``."""
    level: Iterable[Any] = [body]
    for _ in range(depth):
        nested = []
        for item in level:
            if not isinstance(item, dict):
                continue
            numbers = {
                k: int(v)
                for k, v in item.items()
                if k in ("used", "limit", "remaining")
                and isinstance(v, int | float)
                and not isinstance(v, bool)
            }
            if numbers:
                return numbers
            nested += [v for v in item.values() if isinstance(v, dict)]
        level = nested
    return {}
