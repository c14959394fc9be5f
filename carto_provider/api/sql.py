"""CARTO's SQL API as data: paths, request bodies and query results.

No I/O and no Airflow here. What jobs are and how their outcome is read lives in
:mod:`carto_provider.api.jobs`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from carto_provider.api.untrusted import path_segment
from carto_provider.errors import CartoError

#: The CARTO connection name of the CARTO Data Warehouse.
CARTO_DW = "carto_dw"
#: The SQL API returns at most this many rows from ``/query`` (CARTO docs).
SQL_API_MAX_ROWS = 200_000
#: CARTO's synchronous SQL endpoints give up after one minute; the client waits a little longer.
QUERY_TIMEOUT: tuple[float, float] = (10.0, 75.0)

QueryParameters = Mapping[str, Any] | Sequence[Any]


# ---------------------------------------------------------------------------------------------- paths


def sql_path(connection: str, *parts: str) -> str:
    """``/v3/sql/{connection}/...`` with every part a checked path segment (:func:`path_segment`)."""
    if not connection or not str(connection).strip():
        raise ValueError("A CARTO connection name is required (e.g. 'carto_dw').")
    segments = [path_segment(connection, "connection name"), *(path_segment(p, "job id") for p in parts)]
    return "/".join(["/v3/sql", *segments])


def job_path(connection: str, job_id: str | None = None) -> str:
    """``/v3/sql/{connection}/job[/{jobId}]``."""
    return sql_path(connection, "job", *([job_id] if job_id else []))


# ---------------------------------------------------------------------------------------------- connections


def connection_provider(item: Any) -> str | None:
    """The provider of one connection as ``GET /v3/connections`` lists it: ``providerId`` (the name
    in @carto/api-client 0.5.34's types, ``src/fetch-map/types.ts``) or ``provider`` (CARTO's CLI
    output, CartoDB/agent-skills); which one the raw API sends is not published, so both are read."""
    if not isinstance(item, Mapping):
        return None
    value = item.get("providerId") or item.get("provider")
    return str(value) if value else None


def provider_of(connections: Sequence[Any], name: str) -> str | None:
    """The provider of the connection called ``name`` in a connections list, or None."""
    for item in connections:
        if isinstance(item, Mapping) and item.get("name") == name and connection_provider(item):
            return connection_provider(item)
    return None


def carto_time(when: dt.datetime) -> str:
    """``2022-10-01T00:00:00.000Z``: UTC with milliseconds and ``Z``, as @carto/ps-services 1.1.1
    sends ``created_since`` (``dist/ps-services.es.js`` listJobs)."""
    utc = when.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def tag_value(value: Any) -> str:
    """A job tag as sent and compared: a string as it is, anything else as JSON (``3`` -> ``"3"``).

    ps-services 1.1.1 types metadata as ``Record<string, unknown>`` but its only examples are strings
    and its listJobs compares with ``===``; a server that keeps strings would never match an int tag,
    and a retried task would silently run its SQL again."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


# ---------------------------------------------------------------------------------------------- bodies


def query_body(sql: str, query_parameters: QueryParameters | None = None) -> dict[str, Any]:
    """The body of ``POST /v3/sql/{connection}/query`` (the SQL goes in ``q``)."""
    return _with_parameters({"q": _sql_text(sql)}, query_parameters)


def job_body(
    sql: str,
    query_parameters: QueryParameters | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v3/sql/{connection}/job`` (the SQL goes in ``query``; ``metadata`` is
    stored with the job and listed by ``GET /v3/sql/jobs``, as ``@carto/ps-services`` sends it),
    every metadata value as a string (:func:`tag_value`)."""
    body = _with_parameters({"query": _sql_text(sql)}, query_parameters)
    if metadata:
        body["metadata"] = {str(key): tag_value(value) for key, value in metadata.items()}
    return body


def _sql_text(sql: str) -> str:
    if not isinstance(sql, str) or not sql.strip():
        raise ValueError("The SQL to run is empty.")
    return sql


def _with_parameters(body: dict[str, Any], parameters: QueryParameters | None) -> dict[str, Any]:
    if parameters is None or len(parameters) == 0:
        return body
    if isinstance(parameters, Mapping):
        body["queryParameters"] = dict(parameters)
    elif isinstance(parameters, Sequence) and not isinstance(parameters, str | bytes):
        body["queryParameters"] = list(parameters)
    else:
        raise ValueError(
            "query_parameters must be a dict (BigQuery @name parameters) or a list "
            "(positional parameters: Snowflake :1, PostgreSQL/Redshift $1)."
        )
    return body


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class QueryResult:
    """What ``/query`` returned: ``rows`` as dicts, CARTO's ``schema`` and ``meta``."""

    rows: list[dict[str, Any]]
    schema: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_response(cls, body: Any) -> QueryResult:
        """Read a ``/query`` response body."""
        if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
            raise CartoError("The CARTO SQL API answered without a 'rows' list.")
        schema = body.get("schema")
        meta = body.get("meta")
        return cls(
            rows=body["rows"],
            schema=schema if isinstance(schema, list) else [],
            meta=meta if isinstance(meta, dict) else {},
        )
