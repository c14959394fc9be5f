"""CARTO's SQL API and Imports API as data: paths, request bodies, job states and errors.

No I/O and no Airflow here; :mod:`carto_provider.hooks.sql` (sync) and
:mod:`carto_provider.hooks.sql_async` (async, for triggers) both speak through it.

CARTO does not document the status words of SQL jobs (``shared/reference/carto-api.md`` §3). The
Imports API uses ``pending``, ``running``, ``success``, ``failure`` and ``cancelled``; CARTO's legacy
Batch API used ``done``, ``failed``, ``canceled`` and ``unknown``. A status is therefore read
case-insensitively against the union of those words, and anything else counts as still running.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from carto_provider.auth.errors import CartoAPIError, CartoError
from carto_provider.auth.http import redact_url

#: The CARTO connection name of the CARTO Data Warehouse.
CARTO_DW = "carto_dw"
#: The SQL API returns at most this many rows from ``/query`` (CARTO docs).
SQL_API_MAX_ROWS = 200_000
#: CARTO's synchronous SQL endpoints give up after one minute; the client waits a little longer.
QUERY_TIMEOUT: tuple[float, float] = (10.0, 75.0)

SUCCESS_WORDS = frozenset({"success", "done"})
FAILURE_WORDS = frozenset({"failure", "failed", "error", "unknown"})
CANCELLED_WORDS = frozenset({"cancelled", "canceled"})
TERMINAL_WORDS = SUCCESS_WORDS | FAILURE_WORDS | CANCELLED_WORDS

RUNNING, SUCCEEDED, FAILED, CANCELLED = "running", "success", "failed", "cancelled"

QueryParameters = Mapping[str, Any] | Sequence[Any]


def outcome_of(status: Any) -> str:
    """``success``, ``failed``, ``cancelled`` or (anything not terminal) ``running``."""
    word = str(status or "").strip().lower()
    if word in SUCCESS_WORDS:
        return SUCCEEDED
    if word in FAILURE_WORDS:
        return FAILED
    if word in CANCELLED_WORDS:
        return CANCELLED
    return RUNNING


def error_text(error: Any) -> str | None:
    """A job's ``error`` as CARTO sent it: a string unchanged, anything else as JSON."""
    if error is None or error == "":
        return None
    return error if isinstance(error, str) else json.dumps(error, default=str)


# ---------------------------------------------------------------------------------------------- paths


def sql_path(connection: str, *parts: str) -> str:
    """``/v3/sql/{connection}/...`` with every part URL-quoted."""
    if not connection or not str(connection).strip():
        raise ValueError("A CARTO connection name is required (e.g. 'carto_dw').")
    return "/".join(["/v3/sql", *(quote(str(p), safe="") for p in (connection, *parts))])


def job_path(connection: str, job_id: str | None = None) -> str:
    """``/v3/sql/{connection}/job[/{jobId}]``."""
    return sql_path(connection, "job", *([job_id] if job_id else []))


def import_path(job_id: str | None = None, action: str | None = None) -> str:
    """``/v3/imports[/{jobId}[/{action}]]``."""
    parts = [quote(str(p), safe="") for p in (job_id, action) if p]
    return "/".join(["/v3/imports", *parts])


# ---------------------------------------------------------------------------------------------- bodies


def query_body(sql: str, query_parameters: QueryParameters | None = None) -> dict[str, Any]:
    """The body of ``POST /v3/sql/{connection}/query`` (the SQL goes in ``q``)."""
    return _with_parameters({"q": _sql_text(sql)}, query_parameters)


def job_body(sql: str, query_parameters: QueryParameters | None = None) -> dict[str, Any]:
    """The body of ``POST /v3/sql/{connection}/job`` (the SQL goes in ``query``)."""
    return _with_parameters({"query": _sql_text(sql)}, query_parameters)


def import_body(
    *, url: str, destination: str, connection: str, overwrite: bool, autoguessing: bool
) -> dict[str, Any]:
    """The body of ``POST /v3/imports``."""
    for name, value in (("url", url), ("destination", destination), ("connection", connection)):
        if not value or not str(value).strip():
            raise ValueError(f"A CARTO import needs a {name}.")
    return {
        "connection": connection,
        "url": url,
        "destination": destination,
        "overwrite": bool(overwrite),
        "autoguessing": bool(autoguessing),
    }


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


def response_json(response: Any) -> Any:
    """The JSON body of a ``requests`` or ``httpx`` response (``{}`` when empty), or a clear error."""
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        method = getattr(getattr(response, "request", None), "method", "")
        raise CartoAPIError(
            f"CARTO answered {method} {redact_url(str(response.url))} with HTTP {response.status_code} "
            "but no JSON.",
            status=response.status_code,
        ) from None


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


@dataclass(frozen=True)
class CartoJob:
    """A SQL job or an import as CARTO last described it.

    ``kind`` is ``"SQL job"`` or ``"import"``; ``status`` is CARTO's word, ``outcome`` what it means
    (``running``, ``success``, ``failed`` or ``cancelled``); ``body`` the response as sent.
    """

    kind: str
    job_id: str
    status: str
    connection: str | None = None
    external_id: str | None = None
    error: str | None = None
    body: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_response(
        cls, kind: str, body: Any, *, connection: str | None = None, job_id: str | None = None
    ) -> CartoJob:
        """Read a job or import response; ``job_id`` fills in when the body does not repeat it."""
        if not isinstance(body, dict):
            raise CartoError(f"CARTO answered a {kind} request with {type(body).__name__}, not an object.")
        found = body.get("jobId") or body.get("id") or body.get("externalId") or job_id
        if not found:
            raise CartoError(f"CARTO's {kind} response has no jobId (fields: {sorted(body)}).")
        external = body.get("externalId")
        return cls(
            kind=kind,
            job_id=str(found),
            status=str(body.get("status") or ""),
            connection=connection or body.get("connection"),
            external_id=str(external) if external else None,
            error=error_text(body.get("error")),
            body=dict(body),
        )

    @property
    def outcome(self) -> str:
        """``running``, ``success``, ``failed`` or ``cancelled``."""
        return outcome_of(self.status)

    @property
    def done(self) -> bool:
        """True once the job reached a terminal status."""
        return self.outcome != RUNNING

    def ids(self) -> dict[str, Any]:
        """What identifies the job (the XCom of the SQL operators)."""
        return {
            "job_id": self.job_id,
            "external_id": self.external_id,
            "connection": self.connection,
            "status": self.status,
        }

    def summary(self) -> dict[str, Any]:
        """A JSON-safe description for trigger events and XCom. CARTO's echo of the import URL is left
        out (signed URLs carry credentials), and of the SQL (the task has it; it may be long)."""
        return {
            "kind": self.kind,
            **self.ids(),
            "error": self.error,
            "body": {k: v for k, v in self.body.items() if k not in ("url", "query")},
        }

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> CartoJob:
        """The job back from :meth:`summary`."""
        return cls(
            kind=str(summary["kind"]),
            job_id=str(summary["job_id"]),
            status=str(summary.get("status") or ""),
            connection=summary.get("connection"),
            external_id=summary.get("external_id"),
            error=summary.get("error"),
            body=dict(summary.get("body") or {}),
        )

    def describe(self) -> str:
        """``CARTO SQL job 'j1' on connection 'carto_dw'`` and the like."""
        where = f" on connection {self.connection!r}" if self.connection and self.kind != "import" else ""
        return f"CARTO {self.kind} {self.job_id!r}{where}"

    def check(self) -> CartoJob:
        """Return the job if it succeeded; raise :class:`CartoJobError` if it failed or was cancelled."""
        if self.outcome == FAILED:
            raise CartoJobError(
                f"{self.describe()} failed (status {self.status!r}): {self.error or 'CARTO gave no error'}",
                job=self,
            )
        if self.outcome == CANCELLED:
            detail = f": {self.error}" if self.error else ""
            raise CartoJobError(f"{self.describe()} was cancelled (status {self.status!r}){detail}", job=self)
        return self


class CartoJobError(CartoError):
    """A CARTO SQL job or import ended in failure or was cancelled; ``job`` is its last state."""

    def __init__(self, message: str, *, job: CartoJob) -> None:
        super().__init__(message)
        self.job = job


class CartoJobTimeout(CartoError):
    """A job did not finish in the time allowed (it has been cancelled when so asked)."""


class QueryTooLargeError(CartoError):
    """A synchronous query returned more rows than the caller accepts, or hit the SQL API cap."""


def poll_delays(longest: float) -> Iterator[float]:
    """Seconds to wait between status checks: from min(1 s, ``longest``), doubling up to ``longest``.

    Short jobs are seen finishing quickly, long ones cost few requests.
    """
    if longest <= 0:
        raise ValueError("poll_interval must be positive.")
    delay = min(1.0, longest)
    while True:
        yield delay
        delay = min(longest, delay * 2)
