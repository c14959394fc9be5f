"""A PEP 249 (DB-API 2.0) connection and cursor over CARTO's SQL API.

No Airflow here: :class:`Connection` runs statements through a :class:`SQLRunner` (in Airflow,
:class:`~carto_provider.hooks.dbapi.CartoDbApiHook`, which is one). A statement that returns rows
(``SELECT``, ``WITH``...) goes to ``POST /v3/sql/{connection}/query``; any other statement (DDL, DML,
``CALL``) runs as a SQL job (``POST /v3/sql/{connection}/job``) that the cursor waits for, as CARTO
recommends for work that may pass the one-minute limit of ``/query``. ``statement_mode`` forces one
or the other.

Parameters become CARTO's ``queryParameters``: a mapping for named parameters (``@name`` on
BigQuery), a sequence for positional ones (``?`` on BigQuery). CARTO has no transactions: every
statement commits on its own, so :meth:`Connection.commit` does nothing and
:meth:`Connection.rollback` raises :class:`NotSupportedError`.

A statement that fails raises PEP 249's classes (common.sql and pandas catch ``DatabaseError``), with
CARTO's own error chained as ``__cause__`` and kept in ``carto_error`` (:func:`database_error`).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime as dt
import decimal
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from carto_provider.api.jobs import CartoJob
from carto_provider.api.sql import QueryResult
from carto_provider.errors import (
    CartoAPIError,
    CartoError,
    CartoJobTimeout,
    ConfigurationError,
    CredentialsError,
    QueryTooLargeError,
    ResponseTooLargeError,
)

apilevel = "2.0"
threadsafety = 1  # threads may share the module, not connections
paramstyle = "qmark"  # and named (@name) through a mapping

STATEMENT_MODES = ("auto", "query", "job")
#: First keywords of statements that return rows (run with ``/query``).
ROW_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "TABLE"})
_LEADING_NOISE = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()+", re.DOTALL)


class Warning(Exception):  # the name PEP 249 gives it
    """PEP 249 ``Warning``."""


class Error(Exception):
    """PEP 249 ``Error``: the base of this module's errors; ``carto_error`` is the CARTO error behind
    it (also its ``__cause__``), or None."""

    carto_error: CartoError | None = None


class InterfaceError(Error):
    """PEP 249 ``InterfaceError``: the connection or cursor was misused (e.g. used after close)."""


class DatabaseError(Error):
    """PEP 249 ``DatabaseError``: CARTO or the warehouse refused or failed a statement."""


class ProgrammingError(DatabaseError):
    """PEP 249 ``ProgrammingError``: e.g. fetching before any statement returned rows, or CARTO
    refusing the request (HTTP 4xx)."""


class OperationalError(DatabaseError):
    """PEP 249 ``OperationalError``: CARTO could not be reached, was unavailable (429, 5xx), refused
    the credentials, or a job ran out of time."""


class DataError(DatabaseError):
    """PEP 249 ``DataError``: a result too large for the limits set (rows or bytes)."""


class IntegrityError(DatabaseError):
    """PEP 249 ``IntegrityError`` (CARTO does not tell it apart: never raised here)."""


class InternalError(DatabaseError):
    """PEP 249 ``InternalError`` (CARTO does not tell it apart: never raised here)."""


class NotSupportedError(DatabaseError):
    """PEP 249 ``NotSupportedError``: e.g. ``rollback`` (CARTO has no transactions)."""


class SQLRunner(Protocol):
    """What runs the SQL: :class:`~carto_provider.hooks.sql.CartoSQLHook` and its subclasses."""

    def run_query(
        self, sql: str, *, connection: str, query_parameters: Any = None, max_rows: int | None = None
    ) -> QueryResult: ...

    def submit_job(self, sql: str, *, connection: str, query_parameters: Any = None) -> CartoJob: ...

    def wait_for_job(
        self,
        job_id: str,
        *,
        connection: str,
        poll_interval: float = ...,
        timeout: float | None = ...,
        cancel_on_timeout: bool = ...,
    ) -> CartoJob: ...


def database_error(error: CartoError) -> Error:
    """The PEP 249 error for a CARTO error (see each class), carrying it as ``carto_error``."""
    kind: type[Error]
    if isinstance(error, QueryTooLargeError | ResponseTooLargeError):
        kind = DataError
    elif isinstance(error, ConfigurationError):
        kind = ProgrammingError
    elif isinstance(error, CredentialsError | CartoJobTimeout):
        kind = OperationalError
    elif isinstance(error, CartoAPIError):
        status = error.status
        kind = OperationalError if status is None or status == 429 or status >= 500 else ProgrammingError
    else:
        kind = DatabaseError  # a failed or cancelled job: the warehouse's error
    wrapped = kind(str(error))
    wrapped.carto_error = error
    return wrapped


@contextlib.contextmanager
def _as_database_errors() -> Iterator[None]:
    try:
        yield
    except CartoError as exc:
        raise database_error(exc) from exc


def returns_rows(sql: str) -> bool:
    """True when ``sql`` starts (after comments and brackets) with a keyword of a row-returning query."""
    match = re.match(r"[A-Za-z]+", _LEADING_NOISE.sub("", sql, count=1))
    return match is not None and match.group(0).upper() in ROW_KEYWORDS


def json_value(value: Any) -> Any:
    """A parameter value as JSON can carry it (dates and times ISO 8601, decimals exact as text)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def query_parameters(parameters: Any) -> dict[str, Any] | list[Any] | None:
    """PEP 249 parameters as CARTO ``queryParameters``: a mapping (named) or a sequence (positional)."""
    if parameters is None:
        return None
    if isinstance(parameters, Mapping):
        return {str(k): json_value(v) for k, v in parameters.items()} or None
    if isinstance(parameters, Sequence) and not isinstance(parameters, str | bytes):
        return [json_value(v) for v in parameters] or None
    raise ProgrammingError(
        f"Query parameters must be a mapping (named: @name) or a sequence (positional: ?), "
        f"not {type(parameters).__name__}."
    )


class Connection:
    """A PEP 249 connection to one CARTO connection (``carto_connection``, e.g. ``carto_dw``).

    :param runner: what runs the SQL (a :class:`SQLRunner`).
    :param carto_connection: the CARTO connection name the SQL runs on.
    :param statement_mode: ``auto`` (rows from ``/query``, other statements as jobs), ``query`` or ``job``.
    :param poll_interval: the longest wait between two status checks of a job, in seconds.
    :param job_timeout: seconds a job may take before it is cancelled and the statement fails.
    :param job_ids: a list that collects the id of every SQL job its cursors run (lineage).
    """

    autocommit = True  # every CARTO statement commits on its own

    def __init__(
        self,
        runner: SQLRunner,
        carto_connection: str,
        *,
        statement_mode: str = "auto",
        poll_interval: float = 10.0,
        job_timeout: float | None = None,
        job_ids: list[str] | None = None,
    ) -> None:
        if statement_mode not in STATEMENT_MODES:
            raise InterfaceError(f"statement_mode must be one of {STATEMENT_MODES}, not {statement_mode!r}.")
        self.runner = runner
        self.carto_connection = carto_connection
        self.statement_mode = statement_mode
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.job_ids = [] if job_ids is None else job_ids
        self.closed = False

    def __repr__(self) -> str:
        return f"carto_provider.api.dbapi.Connection(carto_connection={self.carto_connection!r})"

    def cursor(self) -> Cursor:
        """A new cursor."""
        self._check_open()
        return Cursor(self)

    def commit(self) -> None:
        """Nothing to do: every CARTO statement has already committed."""
        self._check_open()

    def rollback(self) -> None:
        """CARTO has no transactions to roll back."""
        raise NotSupportedError("CARTO's SQL API has no transactions: every statement commits on its own.")

    def close(self) -> None:
        """Close the connection (there is nothing to release on CARTO's side)."""
        self.closed = True

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise InterfaceError("The CARTO DB-API connection is closed.")


class Cursor:
    """A PEP 249 cursor: runs one statement at a time and holds its rows.

    ``description`` names the result's columns with CARTO's type names; ``rowcount`` is the number
    of rows returned, or -1 for a statement run as a job (CARTO does not report affected rows);
    ``job_id`` is the CARTO SQL job of the last statement run as a job.
    """

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self.job_id: str | None = None
        self.job_ids: list[str] = []
        self.query_meta: dict[str, Any] = {}
        self._rows: list[tuple[Any, ...]] = []
        self._position = 0
        self.closed = False

    def execute(self, operation: str, parameters: Any = None) -> Cursor:
        """Run one statement (``/query`` for rows, a job otherwise; see the module doc)."""
        self._check_open()
        conn = self.connection
        params = query_parameters(parameters)
        self.description, self.rowcount, self._rows, self._position = None, -1, [], 0
        self.job_id, self.query_meta = None, {}
        mode = conn.statement_mode
        with _as_database_errors():
            if mode == "query" or (mode == "auto" and returns_rows(operation)):
                result = conn.runner.run_query(
                    operation, connection=conn.carto_connection, query_parameters=params
                )
                self._take(result)
            else:
                self._run_job(operation, params)
        return self

    def _run_job(self, operation: str, params: Any) -> None:
        conn = self.connection
        job = conn.runner.submit_job(operation, connection=conn.carto_connection, query_parameters=params)
        self.job_id = job.job_id
        self.job_ids.append(job.job_id)
        conn.job_ids.append(job.job_id)
        if not job.done:
            job = conn.runner.wait_for_job(
                job.job_id,
                connection=conn.carto_connection,
                poll_interval=conn.poll_interval,
                timeout=conn.job_timeout,
            )
        job.check()

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> Cursor:
        """Run ``operation`` once per parameter set; a one-row ``INSERT ... VALUES (?, ...)`` is sent as
        multi-row ``INSERT`` statements (one SQL job per :data:`MAX_QUERY_PARAMETERS` values, BigQuery's
        cap on a query's parameters, instead of one job per row)."""
        batches = list(seq_of_parameters)
        width = max((len(b) for b in batches if not isinstance(b, Mapping)), default=1) or 1
        per_statement = max(1, MAX_QUERY_PARAMETERS // width)
        chunks = [batches[i : i + per_statement] for i in range(0, len(batches), per_statement)]
        merged = [multi_row_insert(operation, chunk) for chunk in chunks]
        if merged and all(m is not None for m in merged):
            for statement in merged:
                assert statement is not None
                self.execute(*statement)
            return self
        for parameters in batches:
            self.execute(operation, parameters)
        return self

    def _take(self, result: QueryResult) -> None:
        names = [str(f.get("name")) for f in result.schema if isinstance(f, dict)]
        if not names and result.rows:
            names = list(result.rows[0])
        types = {str(f.get("name")): f.get("type") for f in result.schema if isinstance(f, dict)}
        self.description = [(name, types.get(name), None, None, None, None, None) for name in names]
        self._rows = [tuple(row.get(name) for name in names) for row in result.rows]
        self.rowcount = len(self._rows)
        self.query_meta = dict(result.meta)

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row, or None."""
        rows = self.fetchmany(1)
        return rows[0] if rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        """Up to ``size`` (default ``arraysize``) next rows."""
        self._check_rows()
        end = self._position + (self.arraysize if size is None else size)
        rows = self._rows[self._position : end]
        self._position += len(rows)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Every remaining row."""
        self._check_rows()
        rows = self._rows[self._position :]
        self._position = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    def setinputsizes(self, sizes: Any) -> None:
        """Does nothing (PEP 249 allows it)."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """Does nothing (PEP 249 allows it)."""

    def close(self) -> None:
        """Close the cursor and drop its rows."""
        self.closed = True
        self._rows = []

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise InterfaceError("The CARTO DB-API cursor is closed.")
        self.connection._check_open()

    def _check_rows(self) -> None:
        self._check_open()
        if self.description is None:
            raise ProgrammingError("The last statement returned no rows (it ran as a CARTO SQL job).")


#: The most query parameters one statement sends: BigQuery's quota ("maximum number of query
#: parameters: 10,000"); CARTO publishes no cap of its own (carto-evidence.md A.6).
MAX_QUERY_PARAMETERS = 10_000

_INSERT_HEAD = re.compile(r"\s*INSERT\s+INTO\s", re.IGNORECASE)
_VALUES = re.compile(r"\sVALUES\s*", re.IGNORECASE)
_PLACEHOLDER_ROW = re.compile(r"(\(\s*\?(?:\s*,\s*\?)*\s*\))\s*;?\s*")


def _single_row_insert(operation: str) -> tuple[str, str] | None:
    """``(head up to VALUES, "(?, ...)")`` of a one-row positional ``INSERT``, else None. Linear in
    the statement's length (a backtracking pattern took seconds for a 30 KB statement)."""
    if not _INSERT_HEAD.match(operation):
        return None
    # The last VALUES (a column may be named "values"); a deque of one keeps only it, in one pass.
    values = next(iter(collections.deque(_VALUES.finditer(operation), maxlen=1)), None)
    if values is None:
        return None
    row = _PLACEHOLDER_ROW.fullmatch(operation, values.end())
    return None if row is None else (operation[: values.end()], row.group(1))


def multi_row_insert(operation: str, batches: list[Any]) -> tuple[str, list[Any]] | None:
    """``INSERT ... VALUES (?, ?)`` with N positional parameter sets as one N-row ``INSERT``, or None."""
    parts = _single_row_insert(operation)
    if parts is None or not batches or any(isinstance(b, Mapping) for b in batches):
        return None
    head, row = parts
    width = row.count("?")
    if any(len(b) != width for b in batches):
        return None
    sql = head + ", ".join([row] * len(batches))
    return sql, [value for batch in batches for value in batch]
