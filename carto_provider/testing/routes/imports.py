"""``/v3/imports``: CARTO's Imports API, loading CSV and GeoJSON files into the emulator's warehouse.

* ``POST /v3/imports`` (``connection``, ``url``, ``destination``, ``overwrite``, ``autoguessing``)
  starts an import; more than :attr:`ImportSettings.max_concurrent` (CARTO: 5) pending or running at
  once answers 429 with ``Retry-After``.
* ``GET /v3/imports/{jobId}``, ``POST /v3/imports/{jobId}/cancel``, ``GET /v3/imports``.

An import waits :attr:`ImportSettings.duration` seconds (cancellable), downloads the URL, and loads
it through the warehouse's BigQuery SQL: it creates the destination dataset if needed, then the
table (``overwrite`` replaces it, otherwise an existing table fails the import). With
``autoguessing`` columns get INT64, FLOAT64, BOOL, DATE, TIMESTAMP or STRING, and a CSV column named
``geom``/``the_geom``/``geometry``/``wkt`` holding WKT or GeoJSON becomes GEOGRAPHY; without it every
CSV column is STRING. A GeoJSON file gives one row per feature: its properties and a ``geom``
GEOGRAPHY column. A finished import shows ``rowsImported`` and ``schema``, as CARTO's CLI does.

``GET /emulator/files/{name}`` serves files to import without any network: files a test registered
with :func:`serve_file`, ``daily_sales/<YYYY-MM-DD>.csv`` (a day of generated sales, the same for the
same day) and ``stores.geojson``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from carto_provider.testing.routes import state_of
from carto_provider.testing.routes.background import BackgroundJob, JobFailure, JobStore, new_job_id
from carto_provider.testing.routes.common import EmulatorHTTPError, check_api_token, require_api_token
from carto_provider.testing.routes.sql import created_then_503, json_body, refuse_finished_cancel, sql_api
from carto_provider.testing.state import EmulatorState
from carto_provider.testing.warehouse import Warehouse, WarehouseError, get_warehouse

router = APIRouter()

DOWNLOAD_TIMEOUT = 30.0
INSERT_CHUNK_ROWS = 200
GEOMETRY_COLUMNS = ("geom", "the_geom", "geometry", "wkt")
STORES = (
    (1, "Gran Via", "Madrid", -3.7038, 40.4168),
    (2, "Diagonal", "Barcelona", 2.1686, 41.3874),
    (3, "Colon", "Valencia", -0.3763, 39.4699),
    (4, "Triana", "Sevilla", -5.9845, 37.3891),
    (5, "Abando", "Bilbao", -2.9350, 43.2630),
)
PRODUCTS = ("coffee", "tea", "pastry", "sandwich", "juice")


@dataclass
class ImportSettings:
    """How the emulated Imports API behaves (tests change ``imports_api(state).settings``)."""

    #: Seconds an import stays running before the file is loaded.
    duration: float = 1.0
    #: Imports that may be pending or running at once (CARTO: 5); one more answers 429.
    max_concurrent: int = 5
    #: The ``Retry-After`` (seconds) of that 429; None (the default) sends none: CARTO publishes
    #: no ``Retry-After`` and none of its clients reads one (carto-evidence.md section I).
    retry_after: float | None = None
    #: Origins (``http://host:port``) imports may download from besides the emulator's own (its
    #: ``/emulator/files/``): the emulator is not a way to fetch anything a test machine can reach.
    allowed_origins: list[str] = field(default_factory=list)
    #: The largest file an import downloads (bytes); a larger one fails the import.
    max_file_bytes: int = 64 * 1024 * 1024


@dataclass
class ImportsAPI:
    """The Imports API's state in one emulator."""

    settings: ImportSettings = field(default_factory=ImportSettings)
    jobs: JobStore = field(default_factory=JobStore)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards files


def imports_api(state: EmulatorState) -> ImportsAPI:
    """The emulator's Imports API state, created on first use."""
    return state.extension("imports_api", ImportsAPI)


def serve_file(state: EmulatorState, name: str, content: bytes | str, content_type: str = "text/csv") -> str:
    """Serve ``content`` at ``/emulator/files/{name}``; returns that path (append it to the emulator URL)."""
    data = content.encode() if isinstance(content, str) else content
    api = imports_api(state)
    with api.lock:
        api.files[name] = (data, content_type)
    return f"/emulator/files/{name}"


# ---------------------------------------------------------------------------------------------- sample files


def daily_sales_csv(day: dt.date) -> str:
    """A day of sales in five stores: the same rows for the same day."""
    rng = random.Random(f"daily-sales-{day.isoformat()}")  # noqa: S311 - sample data, not secrets
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sale_id", "sale_date", "store_id", "city", "product", "quantity", "amount"])
    for n in range(1, 41):
        store_id, _, city, _, _ = rng.choice(STORES)
        quantity = rng.randint(1, 4)
        amount = round(quantity * rng.uniform(2.5, 9.5), 2)
        writer.writerow(
            [f"{day:%Y%m%d}-{n:03d}", day.isoformat(), store_id, city, rng.choice(PRODUCTS), quantity, amount]
        )
    return out.getvalue()


def stores_geojson() -> str:
    """The five stores as a GeoJSON FeatureCollection of points."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"store_id": store_id, "name": name, "city": city},
        }
        for store_id, name, city, lon, lat in STORES
    ]
    return json.dumps({"type": "FeatureCollection", "features": features})


@router.get("/emulator/files/{name:path}")
async def get_file(request: Request, name: str) -> Response:
    """A file to import (no token needed: CARTO imports from public URLs)."""
    api = imports_api(state_of(request))
    with api.lock:
        registered = api.files.get(name)
    if registered is not None:
        return Response(registered[0], media_type=registered[1])
    day = re.fullmatch(r"daily_sales/(\d{4}-\d{2}-\d{2})\.csv", name)
    if day:
        try:
            return Response(daily_sales_csv(dt.date.fromisoformat(day[1])), media_type="text/csv")
        except ValueError:
            pass
    if name == "stores.geojson":
        return Response(stores_geojson(), media_type="application/geo+json")
    return Response(status_code=404, content=f"No such file: {name}", media_type="text/plain")


# ---------------------------------------------------------------------------------------------- parsing


@dataclass
class Table:
    """Parsed file: BigQuery columns ``(name, type)`` and rows of Python values."""

    columns: list[tuple[str, str]]
    rows: list[list[Any]]


def _column_names(raw: list[str]) -> list[str]:
    names: list[str] = []
    for i, name in enumerate(raw):
        clean = re.sub(r"[^a-z0-9_]", "_", name.strip().lower()) or f"column_{i + 1}"
        if clean[0].isdigit():
            clean = "_" + clean
        base, n = clean, 1
        while clean in names:
            clean, n = f"{base}_{n}", n + 1
        names.append(clean)
    return names


_GUESSES: tuple[tuple[str, Callable[[str], Any]], ...] = (
    ("INT64", lambda v: int(v) if re.fullmatch(r"[+-]?\d{1,18}", v) else _no()),
    ("FLOAT64", float),
    ("BOOL", lambda v: {"true": True, "false": False}[v.lower()]),
    ("DATE", lambda v: dt.date.fromisoformat(v) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) else _no()),
    ("TIMESTAMP", lambda v: dt.datetime.fromisoformat(v.replace("Z", "+00:00"))),
)


def _no() -> Any:
    raise ValueError


def _guess(name: str, values: list[str]) -> tuple[str, list[Any]]:
    present = [v for v in values if v != ""]
    if name in GEOMETRY_COLUMNS and present and all(_looks_geographic(v) for v in present):
        return "GEOGRAPHY", [v or None for v in values]
    for kind, parse in _GUESSES:
        try:
            parsed = {v: parse(v) for v in present}
        except (ValueError, KeyError):
            continue
        if present:
            return kind, [parsed[v] if v != "" else None for v in values]
    return "STRING", [v if v != "" else None for v in values]


def _looks_geographic(value: str) -> bool:
    text = value.lstrip().upper()
    return text.startswith("{") or text.split("(")[0].strip() in (
        "POINT",
        "LINESTRING",
        "POLYGON",
        "MULTIPOINT",
        "MULTILINESTRING",
        "MULTIPOLYGON",
        "GEOMETRYCOLLECTION",
    )


def parse_csv(data: bytes, autoguessing: bool) -> Table:
    """A CSV file with a header row."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise JobFailure("The CSV file is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    rows = [row for row in reader if row]
    if not rows:
        raise JobFailure("The CSV file is empty: a header row is required")
    names = _column_names(rows[0])
    body = rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(names):
            raise JobFailure(f"CSV line {number} has {len(row)} fields; the header has {len(names)}")
    columns, values = [], []
    for i, name in enumerate(names):
        raw = [row[i] for row in body]
        kind, parsed = (
            _guess(name, raw) if autoguessing else ("STRING", [v if v != "" else None for v in raw])
        )
        columns.append((name, kind))
        values.append(parsed)
    return Table(columns, [list(row) for row in zip(*values, strict=True)] if body else [])


def _json_kind(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INT64"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "FLOAT64"
    return "STRING"


def parse_geojson(data: bytes, autoguessing: bool) -> Table:
    """A GeoJSON FeatureCollection (or one Feature): properties plus a ``geom`` column."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise JobFailure("The GeoJSON file is not valid JSON") from None
    features = (
        doc.get("features") if isinstance(doc, dict) and doc.get("type") == "FeatureCollection" else None
    )
    if features is None and isinstance(doc, dict) and doc.get("type") == "Feature":
        features = [doc]
    if not isinstance(features, list):
        raise JobFailure("The GeoJSON file is neither a FeatureCollection nor a Feature")
    keys: dict[str, None] = {}
    for feature in features:
        keys.update(dict.fromkeys((feature.get("properties") or {}) if isinstance(feature, dict) else {}))
    raw_names = list(keys)
    names = _column_names([*raw_names, "geom"])
    columns: list[tuple[str, str]] = []
    values: list[list[Any]] = []
    for raw, name in zip(raw_names, names, strict=False):
        column = [(f.get("properties") or {}).get(raw) for f in features]
        column = [json.dumps(v) if isinstance(v, dict | list) else v for v in column]
        kind = _json_kind(column) if autoguessing else "STRING"
        if kind == "STRING":
            column = [None if v is None else str(v) for v in column]
        columns.append((name, kind))
        values.append(column)
    columns.append((names[-1], "GEOGRAPHY"))
    values.append([json.dumps(f.get("geometry")) if f.get("geometry") else None for f in features])
    return Table(columns, [list(row) for row in zip(*values, strict=True)] if features else [])


# ---------------------------------------------------------------------------------------------- loading


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx is then an HTTPError: an import does not follow it elsewhere


_OPENER = urllib.request.build_opener(_NoRedirects)


def _download(url: str, max_bytes: int) -> tuple[bytes, str]:
    try:
        with _OPENER.open(url, timeout=DOWNLOAD_TIMEOUT) as response:  # http(s) and origin checked
            data = response.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise JobFailure(f"The file at {_shown(url)} is larger than {max_bytes:,} bytes")
            return data, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise JobFailure(f"Could not download the file: HTTP {exc.code} from {_shown(url)}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise JobFailure(f"Could not download the file from {_shown(url)}: {exc}") from None


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def _parser(url: str, content_type: str) -> Callable[[bytes, bool], Table]:
    path = urlsplit(url).path.lower()
    if path.endswith((".geojson", ".json")) or "geo+json" in content_type:
        return parse_geojson
    if path.endswith((".csv", ".txt")) or "csv" in content_type:
        return parse_csv
    raise JobFailure(
        "Unsupported file format: the CARTO emulator imports CSV and GeoJSON "
        "(CARTO also takes GeoPackage, KML, KMZ, TAB, zipped Shapefile and GeoParquet)"
    )


def _value_sql(kind: str, slot: str) -> str:
    if kind == "GEOGRAPHY":
        return f"ST_GEOGFROM({slot})"
    if kind != "STRING":
        return f"CAST({slot} AS {kind})"
    return slot


def with_schema(table: Table, schema: list[dict[str, str]]) -> Table:
    """The file's text columns typed as the import's explicit ``schema`` says (CARTO honours it only
    with ``autoguessing`` off); a column the file lacks fails the import."""
    types = {str(c["name"]).lower(): str(c["type"]).upper() for c in schema}
    names = [name for name, _ in table.columns]
    missing = sorted(set(types) - set(names))
    if missing:
        raise JobFailure(
            f"The schema names columns the file does not have: {', '.join(missing)}", "schemaMismatch"
        )
    return Table([(name, types.get(name, kind)) for name, kind in table.columns], table.rows)


def load_table(warehouse: Warehouse, destination: str, table: Table, overwrite: bool) -> None:
    """Create ``destination`` and insert the rows, through BigQuery SQL."""
    project, dataset, name = destination.split(".")
    quoted = f"`{project}.{dataset}.{name}`"
    columns = ", ".join(f"`{column}` {kind}" for column, kind in table.columns)
    try:
        warehouse.execute(f"CREATE SCHEMA IF NOT EXISTS `{project}.{dataset}`")
        warehouse.execute(f"CREATE {'OR REPLACE ' if overwrite else ''}TABLE {quoted} ({columns})")
    except WarehouseError as exc:
        if exc.reason == "duplicate":
            raise JobFailure(
                f"Table {destination} already exists; set overwrite to true to replace it"
            ) from None
        raise JobFailure(str(exc)) from None
    names = ", ".join(f"`{column}`" for column, _ in table.columns)
    for start in range(0, len(table.rows), INSERT_CHUNK_ROWS):
        chunk = table.rows[start : start + INSERT_CHUNK_ROWS]
        params: dict[str, Any] = {}
        tuples = []
        for r, row in enumerate(chunk):
            slots = []
            for c, ((_, kind), value) in enumerate(zip(table.columns, row, strict=True)):
                params[f"r{r}c{c}"] = value
                slots.append(_value_sql(kind, f"@r{r}c{c}"))
            tuples.append(f"({', '.join(slots)})")
        try:
            warehouse.execute(f"INSERT INTO {quoted} ({names}) VALUES {', '.join(tuples)}", params)  # noqa: S608
        except WarehouseError as exc:
            raise JobFailure(f"Could not load rows {start + 1}-{start + len(chunk)}: {exc}") from None


def _import_work(state: EmulatorState, body: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    def work() -> dict[str, Any]:
        data, content_type = _download(body["url"], imports_api(state).settings.max_file_bytes)
        table = _parser(body["url"], content_type)(data, body["autoguessing"])
        if body.get("schema") and not body["autoguessing"]:
            table = with_schema(table, body["schema"])
        load_table(get_warehouse(state), body["destination"], table, body["overwrite"])
        return {
            "rowsImported": len(table.rows),
            "schema": [{"name": name, "type": kind} for name, kind in table.columns],
        }

    return work


# ---------------------------------------------------------------------------------------------- routes


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{(parts.netloc.rpartition('@')[2]).lower()}"


def _validated(state: EmulatorState, body: Any, own_origin: str) -> dict[str, Any]:
    """The checked body of an import or a preview; ``own_origin`` is the emulator's, as called."""
    if not isinstance(body, dict):
        raise EmulatorHTTPError(400, "The request body must be a JSON object")
    connection = body.get("connection")
    if not connection:
        raise EmulatorHTTPError(400, "Missing connection")
    if connection not in sql_api(state).settings.connections:
        raise EmulatorHTTPError(404, f"Connection not found: {connection}")
    url = body.get("url")
    if (
        not isinstance(url, str)
        or urlsplit(url).scheme not in ("http", "https")
        or not urlsplit(url).hostname
    ):
        raise EmulatorHTTPError(400, "url must be a public http(s) URL")
    allowed = {_origin(own_origin), *(_origin(o) for o in imports_api(state).settings.allowed_origins)}
    if _origin(url) not in allowed:
        raise EmulatorHTTPError(
            400,
            "The CARTO emulator imports only files it serves (/emulator/files/...) or from an origin "
            "registered in its imports settings (allowed_origins)",
        )
    destination = str(body.get("destination") or "").strip().strip("`")
    if not re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+", destination):
        raise EmulatorHTTPError(
            400, "destination must be a fully-qualified table name: project.dataset.table"
        )
    for flag in ("overwrite", "autoguessing"):
        if flag in body and not isinstance(body[flag], bool):
            raise EmulatorHTTPError(400, f"{flag} must be true or false")
    return {
        "connection": connection,
        "url": url,
        "destination": destination,
        "overwrite": body.get("overwrite", False),
        "autoguessing": body.get("autoguessing", True),
        "schema": _schema(body.get("schema")),
    }


def _schema(raw: Any) -> list[dict[str, str]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(
        isinstance(c, dict) and c.get("name") and c.get("type") for c in raw
    ):
        raise EmulatorHTTPError(400, 'schema must be a list of columns {"name": ..., "type": ...}')
    return [{"name": str(c["name"]), "type": str(c["type"])} for c in raw]


def _import(request: Request, job_id: str) -> tuple[ImportsAPI, BackgroundJob]:
    require_api_token(request, "imports")
    api = imports_api(state_of(request))
    job = api.jobs.get(job_id)
    if job is None:
        raise EmulatorHTTPError(404, f"Import not found: {job_id}")
    return api, job


@router.post("/v3/imports", response_model=None)
async def create_import(request: Request) -> dict[str, Any] | JSONResponse:
    """Start an import, or answer 429 when too many run already."""
    issued = require_api_token(request, "imports")
    state = state_of(request)
    body = _validated(state, await json_body(request), str(request.base_url))
    if issued.kind == "api":
        check_api_token(issued, "imports", body["connection"])
    settings = imports_api(state).settings
    job = BackgroundJob(new_job_id("import"), settings.duration, dict(body))
    if not imports_api(state).jobs.add(job, max_active=settings.max_concurrent):
        state.record("import_throttled", issued.subject)
        return JSONResponse(
            {
                "error": f"Too many imports in progress: at most {settings.max_concurrent} may run at once",
                "status": 429,
            },
            status_code=429,
            headers={} if settings.retry_after is None else {"Retry-After": f"{settings.retry_after:g}"},
        )
    state.record("import", issued.subject)
    job.start(_import_work(state, body))
    return created_then_503(state) or job.render()


@router.get("/v3/imports")
async def list_imports(request: Request) -> dict[str, Any]:
    """Every import, newest first."""
    require_api_token(request, "imports")
    return {"data": [job.render() for job in imports_api(state_of(request)).jobs.newest_first()]}


@router.get("/v3/imports/{job_id}")
async def get_import(request: Request, job_id: str) -> dict[str, Any]:
    """An import's state."""
    _, job = _import(request, job_id)
    return job.render()


@router.post("/v3/imports/{job_id}/cancel")
async def cancel_import(request: Request, job_id: str) -> dict[str, Any]:
    """Cancel an import (a finished one is returned unchanged)."""
    _, job = _import(request, job_id)
    refuse_finished_cancel(state_of(request), job)
    if job.cancel():
        state_of(request).record("import_cancelled", job_id)
    return job.render()


@router.post("/v3/imports/preview")
async def preview_import(request: Request) -> dict[str, Any]:
    """The columns an import of ``url`` would create (autoguessed) and its first rows. CARTO does not
    publish this reply: the emulator answers ``{"schema": [{name, type}], "rows": [...]}``."""
    import asyncio

    from carto_provider.testing.routes.sql import jsonable

    issued = require_api_token(request, "imports")
    state = state_of(request)
    body = await json_body(request)
    body.setdefault("destination", "emulator.preview.preview")
    checked = _validated(state, body, str(request.base_url))
    if issued.kind == "api":
        check_api_token(issued, "imports", checked["connection"])

    def parse() -> Table:
        data, content_type = _download(checked["url"], imports_api(state).settings.max_file_bytes)
        return _parser(checked["url"], content_type)(data, True)

    try:
        table = await asyncio.to_thread(parse)
    except JobFailure as exc:
        raise EmulatorHTTPError(400, str(exc)) from None
    state.record("import_preview", issued.subject)
    names = [name for name, _ in table.columns]
    return {
        "schema": [{"name": name, "type": kind} for name, kind in table.columns],
        "rows": [jsonable(dict(zip(names, row, strict=True))) for row in table.rows[:10]],
    }
