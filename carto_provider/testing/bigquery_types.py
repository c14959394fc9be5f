"""BigQuery types in the emulator's DuckDB: schema fields both ways, and JSON values to Python values.

A BigQuery schema field is the REST API's dict: ``{"name", "type", "mode", "fields"?}`` with the
standard SQL names (``INT64``, ``FLOAT64``, ``NUMERIC``, ``BIGNUMERIC``, ``BOOL``, ``STRING``,
``BYTES``, ``DATE``, ``DATETIME``, ``TIME``, ``TIMESTAMP``, ``GEOGRAPHY``, ``JSON``, ``INTERVAL``,
``RECORD``). Legacy aliases (``INTEGER``, ``FLOAT``, ``BOOLEAN``, ``STRUCT``) are accepted on input.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import re
from typing import Any

Field = dict[str, Any]

#: Legacy/alias type names the REST API accepts, mapped to the standard SQL name.
TYPE_ALIASES = {
    "INTEGER": "INT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "STRUCT": "RECORD",
    "BIGDECIMAL": "BIGNUMERIC",
    "DECIMAL": "NUMERIC",
}

_TO_DUCKDB = {
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38,9)",
    # DuckDB's DECIMAL stops at 38 digits; BIGNUMERIC keeps BigQuery's scale at the cost of range.
    "BIGNUMERIC": "DECIMAL(38,18)",
    "BOOL": "BOOLEAN",
    "STRING": "VARCHAR",
    "BYTES": "BLOB",
    "DATE": "DATE",
    "DATETIME": "TIMESTAMP",
    "TIME": "TIME",
    "TIMESTAMP": "TIMESTAMPTZ",
    "GEOGRAPHY": "GEOMETRY",
    "JSON": "JSON",
    "INTERVAL": "INTERVAL",
}

_FROM_DUCKDB_ID = {
    "boolean": "BOOL",
    "tinyint": "INT64",
    "smallint": "INT64",
    "integer": "INT64",
    "bigint": "INT64",
    "hugeint": "INT64",
    "utinyint": "INT64",
    "usmallint": "INT64",
    "uinteger": "INT64",
    "ubigint": "INT64",
    "uhugeint": "INT64",
    "float": "FLOAT64",
    "double": "FLOAT64",
    "varchar": "STRING",
    "uuid": "STRING",
    "enum": "STRING",
    "bit": "STRING",
    "blob": "BYTES",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "DATETIME",
    "timestamp_s": "DATETIME",
    "timestamp_ms": "DATETIME",
    "timestamp_ns": "DATETIME",
    "timestamp with time zone": "TIMESTAMP",
    "interval": "INTERVAL",
    "geometry": "GEOGRAPHY",
    "json": "JSON",
    '"null"': "INT64",  # BigQuery types a bare NULL as INT64
    "null": "INT64",
}


_WKT_TYPE_SPACE = re.compile(r"([A-Z]) \(")


class SchemaError(ValueError):
    """A schema field the emulator cannot store."""


def standard_type(type_name: str) -> str:
    """The standard SQL name of a REST type name (``INTEGER`` -> ``INT64``)."""
    upper = str(type_name).upper()
    return TYPE_ALIASES.get(upper, upper)


def duckdb_type(field: Field) -> str:
    """The DuckDB column type of a BigQuery schema field (``mode: REPEATED`` becomes a list)."""
    kind = standard_type(field.get("type", "STRING"))
    if kind == "RECORD":
        children = field.get("fields") or []
        if not children:
            raise SchemaError(f"RECORD field {field.get('name')!r} has no fields")
        inner = ", ".join(f"{quote_identifier(c['name'])} {duckdb_type(c)}" for c in children)
        base = f"STRUCT({inner})"
    elif kind in _TO_DUCKDB:
        base = _TO_DUCKDB[kind]
    else:
        raise SchemaError(f"Unsupported: BigQuery type {kind} (field {field.get('name')!r})")
    return f"{base}[]" if str(field.get("mode", "")).upper() == "REPEATED" else base


def quote_identifier(name: str) -> str:
    """``name`` as a quoted DuckDB identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def bigquery_field(name: str, ddb_type: Any, *, nullable: bool = True) -> Field:
    """The BigQuery schema field of a DuckDB result column (``ddb_type`` is a ``DuckDBPyType``)."""
    type_id = str(ddb_type.id).lower()
    if type_id == "list" or type_id == "array":
        child = bigquery_field(
            name, ddb_type.child if hasattr(ddb_type, "child") else ddb_type.children[0][1]
        )
        child["mode"] = "REPEATED"
        return child
    if type_id == "struct":
        fields = [bigquery_field(child_name, child_type) for child_name, child_type in ddb_type.children]
        return {
            "name": name,
            "type": "RECORD",
            "mode": "NULLABLE" if nullable else "REQUIRED",
            "fields": fields,
        }
    if type_id == "decimal":
        match = re.search(r"\((\d+),\s*(\d+)\)", str(ddb_type))
        scale = int(match.group(2)) if match else 9
        kind = "NUMERIC" if scale <= 9 else "BIGNUMERIC"
    else:
        # MAP and UNION have no BigQuery type; the emulator shows them as strings.
        kind = _FROM_DUCKDB_ID.get(type_id, "STRING")
    return {"name": name, "type": kind, "mode": "NULLABLE" if nullable else "REQUIRED"}


def fetchable_type(ddb_type: Any) -> str | None:
    """A type to CAST a result column to before fetching it, or None when it fetches as is.

    GEOGRAPHY comes back as WKT (like BigQuery), TIMESTAMP as a UTC timestamp (no pytz needed), MAP
    and UNION as text; nested types are cast as a whole.
    """
    text = str(ddb_type)
    fixed = text.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMP").replace("GEOMETRY", "VARCHAR")
    type_id = str(ddb_type.id).lower()
    if type_id in ("map", "union"):
        return "VARCHAR"
    return fixed if fixed != text else None


def python_value(value: Any, field: Field) -> Any:
    """A fetched DuckDB value as BigQuery hands it to Python: TIMESTAMP aware UTC, JSON as text."""
    if value is None:
        return None
    if field.get("mode") == "REPEATED":
        element = {**field, "mode": "NULLABLE"}
        return [python_value(v, element) for v in value]
    kind = field["type"]
    if kind == "RECORD":
        return {c["name"]: python_value(value.get(c["name"]), c) for c in field.get("fields", [])}
    if kind == "TIMESTAMP" and isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    if kind == "GEOGRAPHY" and isinstance(value, str):
        return bigquery_wkt(value)
    return value


def bigquery_wkt(wkt: str) -> str:
    """DuckDB's WKT in BigQuery's spelling: ``POINT (1 2)`` -> ``POINT(1 2)``."""
    return _WKT_TYPE_SPACE.sub(r"\1(", wkt)


# ---------------------------------------------------------------------------- JSON input values


def coerce_json_value(value: Any, field: Field) -> Any:
    """A JSON row value (``insertAll``, load jobs) as the Python value to bind for ``field``.

    Raises ``ValueError`` (with the field name) for a value the field cannot hold.
    """
    if value is None:
        return None
    name = field.get("name", "?")
    if str(field.get("mode", "")).upper() == "REPEATED":
        if not isinstance(value, list):
            raise ValueError(f"field {name}: expected an array, got {type(value).__name__}")
        element = {**field, "mode": "NULLABLE"}
        return [coerce_json_value(v, element) for v in value]
    kind = standard_type(field.get("type", "STRING"))
    try:
        return _coerce_scalar(value, kind, field)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"field {name}: cannot read {value!r} as {kind} ({exc})") from None


def _coerce_scalar(value: Any, kind: str, field: Field) -> Any:
    if kind == "RECORD":
        if not isinstance(value, dict):
            raise TypeError("expected an object")
        return {c["name"]: coerce_json_value(value.get(c["name"]), c) for c in field.get("fields", [])}
    if kind == "INT64":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("not an integer")
        return int(value)
    if kind == "FLOAT64":
        return float(value)
    if kind in ("NUMERIC", "BIGNUMERIC"):
        return decimal.Decimal(str(value))
    if kind == "BOOL":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ValueError("not a boolean")
    if kind == "BYTES":
        return base64.b64decode(value, validate=True)
    if kind == "DATE":
        return dt.date.fromisoformat(str(value))
    if kind == "DATETIME":
        return dt.datetime.fromisoformat(str(value).replace(" ", "T"))
    if kind == "TIME":
        return dt.time.fromisoformat(str(value))
    if kind == "TIMESTAMP":
        return parse_timestamp(value)
    if kind == "JSON":
        return value if isinstance(value, str) else json.dumps(value)
    if kind == "GEOGRAPHY":  # WKT or GeoJSON text, or a GeoJSON object
        return value if isinstance(value, str) else json.dumps(value)
    if kind in ("STRING", "INTERVAL"):
        return value if isinstance(value, str) else str(value)
    raise ValueError(f"unsupported type {kind}")


def parse_timestamp(value: Any) -> dt.datetime:
    """A BigQuery TIMESTAMP input (epoch seconds or ISO text, ``Z``/``UTC``/offset) as naive UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc).replace(tzinfo=None)
    text = str(value).strip()
    text = re.sub(r"\s*(UTC|Z)$", "+00:00", text).replace(" ", "T", 1)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


def infer_schema(rows: list[dict[str, Any]]) -> list[Field]:
    """BigQuery-style schema auto-detection for JSON rows (load jobs with ``autodetect``)."""
    order: list[str] = []
    seen: dict[str, list[Any]] = {}
    for row in rows:
        for key, value in row.items():
            if key not in seen:
                order.append(key)
                seen[key] = []
            seen[key].append(value)
    return [_infer_field(name, seen[name]) for name in order]


def _infer_field(name: str, values: list[Any]) -> Field:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, list) for v in present):
        element = _infer_field(name, [item for v in present for item in v])
        return {**element, "mode": "REPEATED"}
    if present and all(isinstance(v, dict) for v in present):
        merged = infer_schema(present)
        return {"name": name, "type": "RECORD", "mode": "NULLABLE", "fields": merged}
    if present and all(isinstance(v, bool) for v in present):
        kind = "BOOL"
    elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        kind = "INT64"
    elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        kind = "FLOAT64"
    else:
        kind = "STRING"
    return {"name": name, "type": kind, "mode": "NULLABLE"}
