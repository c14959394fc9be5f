"""CARTO's SQL API and Imports API as data: paths, request bodies and query results.

No I/O and no Airflow here. What jobs and imports are and how their outcome is read lives in
:mod:`carto_provider.hooks.jobs` (its names are still importable from here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from carto_provider.auth.untrusted import sanitize
from carto_provider.errors import CartoError, ConfigurationError

#: The CARTO connection name of the CARTO Data Warehouse.
CARTO_DW = "carto_dw"
#: The SQL API returns at most this many rows from ``/query`` (CARTO docs).
SQL_API_MAX_ROWS = 200_000
#: CARTO's synchronous SQL endpoints give up after one minute; the client waits a little longer.
QUERY_TIMEOUT: tuple[float, float] = (10.0, 75.0)

QueryParameters = Mapping[str, Any] | Sequence[Any]


# ---------------------------------------------------------------------------------------------- paths


#: What a name or id may be as one URL path segment: letters, digits and ``_ - . : @ + = ~`` or a
#: space, at most 256 of them, not only dots (``.``/``..`` would name another API path).
_SEGMENT = re.compile(r"(?!\.+\Z)[\w .:@+=~-]{1,256}\Z")


def path_segment(value: Any, what: str = "name") -> str:
    """``value`` URL-quoted as one path segment, or ConfigurationError: a connection name or a job,
    import or workflow id (templated, or sent by a server) cannot turn a call into another API path."""
    text = str(value)
    if not _SEGMENT.match(text):
        raise ConfigurationError(
            f"Refused {what} {sanitize(text, limit=80)!r}: it must be 1 to 256 letters, digits, spaces or "
            "'_-.:@+=~', and not only dots."
        )
    return quote(text, safe="")


def sql_path(connection: str, *parts: str) -> str:
    """``/v3/sql/{connection}/...`` with every part a checked path segment (:func:`path_segment`)."""
    if not connection or not str(connection).strip():
        raise ValueError("A CARTO connection name is required (e.g. 'carto_dw').")
    segments = [path_segment(connection, "connection name"), *(path_segment(p, "job id") for p in parts)]
    return "/".join(["/v3/sql", *segments])


def job_path(connection: str, job_id: str | None = None) -> str:
    """``/v3/sql/{connection}/job[/{jobId}]``."""
    return sql_path(connection, "job", *([job_id] if job_id else []))


def import_path(job_id: str | None = None, action: str | None = None) -> str:
    """``/v3/imports[/{jobId}[/{action}]]``."""
    parts = [path_segment(p, "import id") for p in (job_id, action) if p]
    return "/".join(["/v3/imports", *parts])


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
    stored with the job and listed by ``GET /v3/sql/jobs``, as ``@carto/ps-services`` sends it)."""
    body = _with_parameters({"query": _sql_text(sql)}, query_parameters)
    if metadata:
        body["metadata"] = dict(metadata)
    return body


def import_body(
    *,
    url: str,
    destination: str,
    connection: str = CARTO_DW,
    overwrite: bool = False,
    autoguessing: bool = True,
    schema: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v3/imports``.

    ``schema`` (columns ``{"name", "type"}``, as ``POST /v3/imports/preview`` returns them) is only
    honoured by CARTO with ``autoguessing`` off (CARTO docs), so giving both is refused here.
    """
    for name, value in (("url", url), ("destination", destination), ("connection", connection)):
        if not value or not str(value).strip():
            raise ValueError(f"A CARTO import needs a {name}.")
    body: dict[str, Any] = {
        "connection": connection,
        "url": url,
        "destination": destination,
        "overwrite": bool(overwrite),
        "autoguessing": bool(autoguessing),
    }
    if schema is not None:
        if autoguessing:
            raise ValueError(
                "CARTO ignores an import schema while autoguessing is on: pass autoguessing=False with it."
            )
        columns = [dict(column) for column in schema]
        if not columns or any(not c.get("name") or not c.get("type") for c in columns):
            raise ValueError('An import schema is a list of columns {"name": ..., "type": ...}.')
        body["schema"] = columns
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


class QueryTooLargeError(CartoError):
    """A synchronous query returned more rows than the caller accepts, or hit the SQL API cap."""


# Names that moved to carto_provider.hooks.jobs (the job model), still importable from here.
_MOVED_TO_JOBS = frozenset(
    {
        "CANCELLED",
        "CANCELLED_WORDS",
        "FAILED",
        "FAILURE_WORDS",
        "RUNNING",
        "SUCCESS_WORDS",
        "CartoJob",
        "CartoJobError",
        "CartoJobTimeout",
        "error_text",
        "outcome_of",
        "poll_delays",
    }
)


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_JOBS or name == "SUCCEEDED":
        from carto_provider.hooks import jobs

        return jobs.SUCCESS if name == "SUCCEEDED" else getattr(jobs, name)
    if name == "response_json":
        from carto_provider.transport import response_json

        return response_json
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
