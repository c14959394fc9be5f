"""``/v3/sql``: CARTO's SQL API (queries and jobs) on the emulator's warehouse.

* ``GET|POST /v3/sql/{connection}/query``: runs at once, returns ``{"rows", "schema", "meta"}``,
  at most :attr:`SQLAPISettings.max_rows` rows (CARTO: 200,000).
* ``POST /v3/sql/{connection}/job``, ``GET|DELETE /v3/sql/{connection}/job/{jobId}``,
  ``GET /v3/sql/jobs``: jobs that take :attr:`SQLAPISettings.job_duration` seconds before their SQL
  runs, so waiting, deferral and cancellation can be seen; a cancelled job never runs its SQL.

The connection ``carto_dw`` is the emulator's warehouse (BigQuery SQL); other names answer 404.
SQL errors answer 400 from ``/query`` and fail the job (``status`` failure, ``error`` the message).

Workflows (emulator behaviour): the warehouse has no stored procedures, so this router keeps them.
``CREATE [OR REPLACE] PROCEDURE `p.d.name`(arg TYPE, ...) BEGIN stmt; ...; END`` registers one (simple
argument types; a body of plain statements, no DECLARE/SET/IF/LOOP); ``CALL `p.d.name`(@a, 'x', 1)``
evaluates its arguments and runs the body with each argument name bound as a parameter, as BigQuery
binds procedure arguments (an unqualified column reference with an argument's name means the
argument). That is how CARTO runs a Workflow through its API procedure.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request

from carto_provider.testing.routes import state_of
from carto_provider.testing.routes.background import (
    DEFAULT_WORDS,
    BackgroundJob,
    JobFailure,
    JobStore,
    new_job_id,
)
from carto_provider.testing.routes.common import EmulatorHTTPError, require_api_token
from carto_provider.testing.state import EmulatorState
from carto_provider.testing.warehouse import QueryResult, WarehouseError, get_warehouse

router = APIRouter()

#: The CARTO connection served by the emulator's warehouse.
WAREHOUSE_CONNECTIONS = ("carto_dw",)
MAX_CALL_DEPTH = 10


@dataclass
class SQLAPISettings:
    """How the emulated SQL API behaves (tests change ``sql_api(state).settings``)."""

    #: Seconds a job stays running before its SQL runs (and before it can be seen finished).
    job_duration: float = 1.0
    #: The status word CARTO shows for each state (pending, running, success, failure, cancelled).
    status_words: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_WORDS))
    #: The most rows ``/query`` returns.
    max_rows: int = 200_000


@dataclass(frozen=True)
class Procedure:
    """A stored procedure: its argument names and body statements (BigQuery SQL)."""

    name: str
    arguments: tuple[str, ...]
    body: tuple[str, ...]


@dataclass
class SQLAPI:
    """The SQL API's state in one emulator."""

    settings: SQLAPISettings = field(default_factory=SQLAPISettings)
    jobs: JobStore = field(default_factory=JobStore)
    procedures: dict[str, Procedure] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards procedures


def sql_api(state: EmulatorState) -> SQLAPI:
    """The emulator's SQL API state, created on first use."""
    return state.extension("sql_api", SQLAPI)


# ---------------------------------------------------------------------------------------------- scripts


def _tokens(sql: str) -> list[Any]:
    from sqlglot.dialects.bigquery import BigQuery
    from sqlglot.errors import TokenError

    try:
        return list(BigQuery().tokenize(sql))
    except TokenError as exc:
        raise WarehouseError(f"Syntax error: {exc}") from None


def split_statements(sql: str) -> list[str]:
    """The statements of a script, split at ``;`` outside strings, comments and ``BEGIN...END``."""
    from sqlglot.tokens import TokenType

    statements: list[str] = []
    depth, start = 0, None
    for token in _tokens(sql):
        word = token.text.upper()
        if token.token_type == TokenType.SEMICOLON and depth == 0:
            if start is not None:
                statements.append(sql[start : token.start].strip())
            start = None
            continue
        if start is None:
            start = token.start
        if (word == "BEGIN" and token.token_type in (TokenType.BEGIN, TokenType.COMMAND)) or (
            token.token_type == TokenType.CASE
        ):
            depth += 1
        elif token.token_type == TokenType.END:
            depth = max(0, depth - 1)
    if start is not None:
        statements.append(sql[start:].strip())
    return [s for s in statements if s]


def split_arguments(text: str) -> list[str]:
    """Comma-separated items at the top level of ``text`` (commas inside brackets or strings kept)."""
    from sqlglot.tokens import TokenType

    openers = {TokenType.L_PAREN, TokenType.L_BRACKET}
    closers = {TokenType.R_PAREN, TokenType.R_BRACKET}
    items, depth, start = [], 0, 0
    for token in _tokens(text):
        if token.token_type in openers:
            depth += 1
        elif token.token_type in closers:
            depth -= 1
        elif token.token_type == TokenType.COMMA and depth == 0:
            items.append(text[start : token.start].strip())
            start = token.end + 1
    last = text[start:].strip()
    if last or items:
        items.append(last)
    return items


_NAME = r"(?P<name>`[^`]+`|[\w.\-]+)"
_CREATE_PROCEDURE = re.compile(
    r"CREATE\s+(?P<replace>OR\s+REPLACE\s+)?PROCEDURE\s+(?P<ifnot>IF\s+NOT\s+EXISTS\s+)?"
    + _NAME
    + r"\s*\((?P<args>.*?)\)\s*(?:OPTIONS\s*\(.*?\)\s*)?BEGIN\b(?P<body>.*)\bEND\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CALL = re.compile(r"CALL\s+" + _NAME + r"\s*\((?P<args>.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_PROCEDURE_WORDS = re.compile(r"CREATE\s+(OR\s+REPLACE\s+)?PROCEDURE\b|CALL\b", re.IGNORECASE)


def _procedure_name(raw: str) -> str:
    return raw.strip().strip("`")


def _define_procedure(api: SQLAPI, match: re.Match[str]) -> None:
    name = _procedure_name(match["name"])
    arguments = []
    for item in split_arguments(match["args"]):
        words = item.split()
        if words and words[0].upper() in ("IN", "OUT", "INOUT"):
            words = words[1:]
        if len(words) < 2:
            raise WarehouseError(f"Syntax error: procedure argument {item!r} needs a name and a type")
        arguments.append(words[0])
    procedure = Procedure(name, tuple(arguments), tuple(split_statements(match["body"])))
    with api.lock:
        if name in api.procedures and not match["replace"]:
            if match["ifnot"]:
                return
            raise WarehouseError(f"Already Exists: Routine {name}", "duplicate")
        api.procedures[name] = procedure


def _bind_arguments(statement: str, arguments: Sequence[str]) -> str:
    """``statement`` with unqualified references to the procedure's arguments turned into ``@name``."""
    import sqlglot
    from sqlglot import exp

    names = {a.lower() for a in arguments}

    def swap(node: Any) -> Any:
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in names:
            return exp.Parameter(this=exp.Var(this=node.name))
        return node

    try:
        tree = sqlglot.parse_one(statement, read="bigquery")
    except sqlglot.errors.ParseError as exc:
        raise WarehouseError(f"Syntax error in the procedure body: {str(exc).splitlines()[0]}") from None
    return str(tree.transform(swap).sql(dialect="bigquery"))


def _call(state: EmulatorState, match: re.Match[str], params: Any, depth: int) -> QueryResult:
    name = _procedure_name(match["name"])
    api = sql_api(state)
    with api.lock:
        procedure = api.procedures.get(name)
    if procedure is None:
        raise WarehouseError(f"Not found: Procedure {name}", "notFound")
    values = split_arguments(match["args"])
    if len(values) != len(procedure.arguments):
        raise WarehouseError(
            f"Procedure {name} takes {len(procedure.arguments)} argument(s) but {len(values)} were given"
        )
    bound: dict[str, Any] = {}
    if values:
        select = ", ".join(f"{value} AS a{i}" for i, value in enumerate(values))
        row = get_warehouse(state).execute(f"SELECT {select}", params).rows[0]
        bound = {arg: row[f"a{i}"] for i, arg in enumerate(procedure.arguments)}
    result = QueryResult()
    for statement in procedure.body:
        result = _run_statement(state, _bind_arguments(statement, procedure.arguments), bound, depth + 1)
    return result


def _run_statement(state: EmulatorState, statement: str, params: Any, depth: int) -> QueryResult:
    if depth > MAX_CALL_DEPTH:
        raise WarehouseError(f"Procedures call each other more than {MAX_CALL_DEPTH} levels deep")
    defined = _CREATE_PROCEDURE.match(statement)
    if defined:
        _define_procedure(sql_api(state), defined)
        return QueryResult(statement_type="CREATE_PROCEDURE")
    called = _CALL.match(statement)
    if called:
        return _call(state, called, params, depth)
    return get_warehouse(state).execute(statement, params)


def run_script(
    state: EmulatorState, sql: str, params: Mapping[str, Any] | Sequence[Any] | None
) -> QueryResult:
    """Run BigQuery SQL (a statement or a script, with procedures); return the last result."""
    if not _PROCEDURE_WORDS.search(sql):
        return get_warehouse(state).execute(sql, params)
    result = QueryResult()
    for statement in split_statements(sql):
        result = _run_statement(state, statement, params, 0)
    return result


# ---------------------------------------------------------------------------------------------- JSON


def jsonable(value: Any) -> Any:
    """A warehouse value as CARTO's JSON shows it."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _parameters(raw: Any) -> dict[str, Any] | list[Any] | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise EmulatorHTTPError(400, "queryParameters is not valid JSON") from None
    if isinstance(raw, dict | list):
        return raw
    raise EmulatorHTTPError(400, "queryParameters must be an object (named) or an array (positional)")


def _check_connection(connection: str) -> None:
    if connection not in WAREHOUSE_CONNECTIONS:
        raise EmulatorHTTPError(404, f"Connection not found: {connection}")


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise EmulatorHTTPError(400, "The request body must be JSON") from None
    if not isinstance(body, dict):
        raise EmulatorHTTPError(400, "The request body must be a JSON object")
    return body


# ---------------------------------------------------------------------------------------------- /query


async def _query(request: Request, connection: str, sql: Any, raw_params: Any) -> dict[str, Any]:
    require_api_token(request)
    _check_connection(connection)
    if not isinstance(sql, str) or not sql.strip():
        raise EmulatorHTTPError(400, "Missing query: set q")
    state = state_of(request)
    params = _parameters(raw_params)
    try:
        result = await asyncio.to_thread(run_script, state, sql, params)
    except WarehouseError as exc:
        raise EmulatorHTTPError(400, str(exc)) from None
    limit = sql_api(state).settings.max_rows
    return {
        "rows": [jsonable(row) for row in result.rows[:limit]],
        "schema": [{"name": f["name"], "type": f["type"]} for f in result.schema],
        "meta": {"cacheHit": False, "location": "US", "totalBytesProcessed": "0"},
    }


@router.get("/v3/sql/{connection}/query")
async def query_get(request: Request, connection: str) -> dict[str, Any]:
    """A query in the URL (``q``, ``queryParameters`` as JSON)."""
    args = request.query_params
    return await _query(request, connection, args.get("q"), args.get("queryParameters"))


@router.post("/v3/sql/{connection}/query")
async def query_post(request: Request, connection: str) -> dict[str, Any]:
    """A query in a JSON body (``q``, ``queryParameters``)."""
    body = await json_body(request)
    return await _query(request, connection, body.get("q"), body.get("queryParameters"))


# ---------------------------------------------------------------------------------------------- jobs


def _job_work(state: EmulatorState, sql: str, params: Any) -> Callable[[], dict[str, Any]]:
    def work() -> dict[str, Any]:
        try:
            result = run_script(state, sql, params)
        except WarehouseError as exc:
            raise JobFailure(str(exc)) from None
        return {"statementType": result.statement_type}

    return work


def _render(api: SQLAPI, job: BackgroundJob) -> dict[str, Any]:
    return job.render(api.settings.status_words)


def _job(request: Request, connection: str, job_id: str) -> tuple[SQLAPI, BackgroundJob]:
    require_api_token(request)
    _check_connection(connection)
    api = sql_api(state_of(request))
    job = api.jobs.get(job_id)
    if job is None or job.fields.get("connection") != connection:
        raise EmulatorHTTPError(404, f"Job not found: {job_id}")
    return api, job


@router.post("/v3/sql/{connection}/job")
async def create_job(request: Request, connection: str) -> dict[str, Any]:
    """Start a job (``query``, ``queryParameters``); it runs after ``job_duration`` seconds."""
    issued = require_api_token(request)
    _check_connection(connection)
    body = await json_body(request)
    sql = body.get("query")
    if not isinstance(sql, str) or not sql.strip():
        raise EmulatorHTTPError(400, "Missing query: set query")
    params = _parameters(body.get("queryParameters"))
    state = state_of(request)
    api = sql_api(state)
    job = BackgroundJob(
        new_job_id("job"),
        api.settings.job_duration,
        {"externalId": new_job_id("bquxjob"), "connection": connection, "query": sql},
    )
    api.jobs.add(job)
    state.record("sql_job", issued.subject)
    job.start(_job_work(state, sql, params))
    return _render(api, job)


@router.get("/v3/sql/{connection}/job/{job_id}")
async def get_job(request: Request, connection: str, job_id: str) -> dict[str, Any]:
    """A job's state."""
    api, job = _job(request, connection, job_id)
    return _render(api, job)


@router.delete("/v3/sql/{connection}/job/{job_id}")
async def cancel_job(request: Request, connection: str, job_id: str) -> dict[str, Any]:
    """Cancel a job (a finished job is returned unchanged)."""
    api, job = _job(request, connection, job_id)
    if job.cancel():
        state_of(request).record("sql_job_cancelled", job_id)
    return _render(api, job)


@router.get("/v3/sql/jobs")
async def list_jobs(request: Request) -> dict[str, Any]:
    """Every job, newest first."""
    require_api_token(request)
    api = sql_api(state_of(request))
    return {"data": [_render(api, job) for job in api.jobs.newest_first()]}
