"""``/v3/sql``: CARTO's SQL API (queries and jobs) on the emulator's warehouse.

* ``GET|POST /v3/sql/{connection}/query``: runs at once, returns ``{"rows", "schema", "meta"}``,
  at most :attr:`SQLAPISettings.max_rows` rows (CARTO: 200,000).
* ``POST /v3/sql/{connection}/job``, ``GET|DELETE /v3/sql/{connection}/job/{jobId}``,
  ``GET /v3/sql/jobs``: jobs that take :attr:`SQLAPISettings.job_duration` seconds before their SQL
  runs, so waiting, deferral and cancellation can be seen; a cancelled job never runs its SQL.

Jobs have the shapes of CARTO's own client, ``@carto/ps-services`` 1.1.1
(``dist/types/sqlApi/types.d.ts``), which outranks ``shared/reference/carto-api.md`` and this
emulator's earlier shapes where they differ: the create reply is ``{externalId, accountId, userId,
connectionId, metadata, createdAt}`` with **no** ``jobId`` and **no** ``status`` (``externalId`` is
the id to poll); a job is ``{jobId, query, status, error, createdAt, metadata, ...}`` where ``error``
is an object ``{code, msg}`` or ``{}`` reported apart from the status; ``GET /v3/sql/jobs`` answers
a **bare array** of created-job shapes (no status), from ``created_since`` on (an extra ``metadata``
query parameter, a JSON object, filters it; CARTO's client filters by metadata itself).
:attr:`SQLAPISettings.status_words` plays any status vocabulary, down to the worst case
(:data:`~carto_provider.testing.routes.background.WORST_CASE_WORDS`: a failure is ``done`` + error).

The connections in :attr:`SQLAPISettings.connections` (name -> provider; ``carto_dw`` by default)
all run on the emulator's warehouse (BigQuery SQL); other names answer 404. SQL errors answer 400
from ``/query`` and fail the job (``error`` ``{code: <BigQuery reason>, msg: <message>}``).

Workflows (emulator behaviour): the warehouse has no stored procedures, so this router keeps them.
``CREATE [OR REPLACE] PROCEDURE `p.d.name`(arg TYPE, ...) BEGIN stmt; ...; END`` registers one (simple
argument types; a body of plain statements, no DECLARE/SET/IF/LOOP); ``CALL `p.d.name`(@a, 'x', 1)``
evaluates its arguments and runs the body with each argument name bound as a parameter, as BigQuery
binds procedure arguments (an unqualified column reference with an argument's name means the
argument). That is how CARTO runs a Workflow through its API procedure. ``CALL
`carto-un`.carto.GEOCODE_TABLE(...)`` (any project and dataset) runs the Analytics Toolbox geocoder on
the LDS gazetteer (``testing/lds_data.py``), with the API access token it is given.
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
from fastapi.responses import JSONResponse

from carto_provider.testing.quirks import WAREHOUSE_WORDS, quirks_of
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

#: The CARTO connection served by the emulator's warehouse by default.
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
    #: The CARTO connections served (name -> provider: bigquery, snowflake, databricks, redshift,
    #: postgres); each runs on the emulator's warehouse, whatever its provider says.
    connections: dict[str, str] = field(default_factory=lambda: {"carto_dw": "bigquery"})


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


def _toolbox_call(state: EmulatorState, name: str, match: re.Match[str], params: Any) -> QueryResult | None:
    """CARTO's Analytics Toolbox ``...carto.GEOCODE_TABLE(...)`` (see ``testing/lds_data.py``), or None."""
    if not name.replace("`", "").upper().endswith(".GEOCODE_TABLE"):
        return None
    from carto_provider.testing.lds_data import geocode_table

    values = split_arguments(match["args"])
    select = ", ".join(f"{value} AS a{i}" for i, value in enumerate(values))
    row = get_warehouse(state).execute(f"SELECT {select}", params).rows[0] if values else {}
    geocode_table(state, [row[f"a{i}"] for i in range(len(values))])
    return QueryResult(statement_type="CALL")


def _call(state: EmulatorState, match: re.Match[str], params: Any, depth: int) -> QueryResult:
    name = _procedure_name(match["name"])
    api = sql_api(state)
    with api.lock:
        procedure = api.procedures.get(name)
    if procedure is None and (toolbox := _toolbox_call(state, name, match, params)) is not None:
        return toolbox
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


_PARAMETERS_VIEW = re.compile(r"FROM\s+`(?P<dataset>[^`]+)\.INFORMATION_SCHEMA\.PARAMETERS`", re.IGNORECASE)


def _procedure_parameters(state: EmulatorState, dataset: str, params: Any) -> QueryResult:
    """``INFORMATION_SCHEMA.PARAMETERS`` of the kept procedures, for the one query a client asks it
    (``... WHERE specific_name = @name ORDER BY ordinal_position``): BigQuery binds a CALL's
    arguments by position, so a client reads their order there."""
    name = params.get("name") if isinstance(params, dict) else None
    api = sql_api(state)
    with api.lock:
        procedure = api.procedures.get(f"{dataset}.{name}")
    arguments = procedure.arguments if procedure is not None else ()
    return QueryResult(
        rows=[{"parameter_name": argument} for argument in arguments],
        schema=[{"name": "parameter_name", "type": "STRING"}],
    )


_SYSTEM_METADATA = re.compile(r"\bINFORMATION_SCHEMA\b", re.IGNORECASE)


def run_script(
    state: EmulatorState,
    sql: str,
    params: Mapping[str, Any] | Sequence[Any] | None,
    connection: str = "carto_dw",
) -> QueryResult:
    """Run BigQuery SQL (a statement or a script, with procedures); return the last result.

    On ``carto_dw`` any ``INFORMATION_SCHEMA`` query is a permission error unless the quirk
    ``information_schema_on_carto_dw`` is on (CartoDB/agent-skills ``migrate-data/lessons.md``:
    "the user-bound token doesn't have access to system metadata")."""
    if (
        connection == "carto_dw"
        and not quirks_of(state).information_schema_on_carto_dw
        and _SYSTEM_METADATA.search(sql)
    ):
        raise WarehouseError(
            "Access Denied: INFORMATION_SCHEMA: User does not have permission to query system metadata "
            "on the CARTO Data Warehouse",
            "accessDenied",
        )
    view = _PARAMETERS_VIEW.search(sql)
    if view:
        return _procedure_parameters(state, view["dataset"], params)
    if not _PROCEDURE_WORDS.search(sql):
        return get_warehouse(state).execute(sql, params)
    result = QueryResult()
    for statement in split_statements(sql):
        result = _run_statement(state, statement, params, 0)
    return result


# ---------------------------------------------------------------------------------------------- JSON


#: How CARTO's JSON shows warehouse values that JSON has no type for.
_JSON_FORMS: tuple[tuple[Any, Callable[[Any], Any]], ...] = (
    (dt.datetime | dt.date | dt.time, lambda v: v.isoformat()),
    (decimal.Decimal, float),
    (bytes | bytearray, lambda v: base64.b64encode(v).decode()),
)


def jsonable(value: Any) -> Any:
    """A warehouse value as CARTO's JSON shows it."""
    for kinds, form in _JSON_FORMS:
        if isinstance(value, kinds):
            return form(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _parameters(raw: Any, cap: int | None = None) -> dict[str, Any] | list[Any] | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise EmulatorHTTPError(400, "queryParameters is not valid JSON") from None
    if isinstance(raw, dict | list):
        if cap is not None and len(raw) > cap:
            raise EmulatorHTTPError(400, f"Too many query parameters: {len(raw)} (at most {cap})")
        return raw
    raise EmulatorHTTPError(400, "queryParameters must be an object (named) or an array (positional)")


def check_connection(state: EmulatorState, connection: str) -> None:
    """A 404 for a connection the emulator does not serve."""
    if connection not in sql_api(state).settings.connections:
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
    require_api_token(request, "sql", connection)
    state = state_of(request)
    check_connection(state, connection)
    if not isinstance(sql, str) or not sql.strip():
        raise EmulatorHTTPError(400, "Missing query: set q")
    params = _parameters(raw_params, quirks_of(state).max_query_parameters)
    limit_seconds = quirks_of(state).query_time_limit
    try:
        result = await asyncio.wait_for(
            asyncio.to_thread(run_script, state, sql, params, connection), timeout=limit_seconds
        )
    except TimeoutError:
        # CARTO's docs: synchronous requests time out after 1 minute. The status is not published.
        raise EmulatorHTTPError(
            504,
            f"The query did not finish within {limit_seconds:g} s",
            hint="Create a job (POST /v3/sql/{connection}/job) and poll it instead of retrying",
        ) from None
    except WarehouseError as exc:
        raise EmulatorHTTPError(403 if exc.reason == "accessDenied" else 400, str(exc)) from None
    limit = sql_api(state).settings.max_rows
    rows = [jsonable(row) for row in result.rows[:limit]]
    schema = [{"name": f["name"], "type": f["type"]} for f in result.schema]
    if _upper_case_keys(state, connection):
        rows = [{str(k).upper(): v for k, v in row.items()} for row in rows]
        schema = [{**f, "name": str(f["name"]).upper()} for f in schema]
    return {
        "rows": rows,
        "schema": schema,
        "meta": {"cacheHit": False, "location": "US", "totalBytesProcessed": "0"},
    }


def _upper_case_keys(state: EmulatorState, connection: str) -> bool:
    """Snowflake answers upper-case column names (@carto/api-client ``normalizeObjectKeys``)."""
    provider = sql_api(state).settings.connections.get(connection, "")
    return quirks_of(state).snowflake_upper_case and provider.lower() == "snowflake"


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


def _job_work(state: EmulatorState, sql: str, params: Any, connection: str) -> Callable[[], dict[str, Any]]:
    def work() -> dict[str, Any]:
        try:
            result = run_script(state, sql, params, connection)
        except WarehouseError as exc:
            raise JobFailure(str(exc), exc.reason) from None
        return {"statementType": result.statement_type}

    return work


def _render(state: EmulatorState, job: BackgroundJob) -> dict[str, Any]:
    quirks = quirks_of(state)
    words = WAREHOUSE_WORDS if quirks.status_words == "warehouse" else sql_api(state).settings.status_words
    body = job.render(words, error_object=True)
    if quirks.job_id_differs:  # the read's jobId is not the externalId it is polled with
        body["jobId"] = "bq_" + job.job_id.removeprefix("job_")
    return body


def _created(job: BackgroundJob) -> dict[str, Any]:
    """A job as its create reply and the jobs list show it (no ``jobId``, no ``status``)."""
    return {
        "externalId": job.job_id,
        "accountId": job.fields["accountId"],
        "userId": job.fields["userId"],
        "connectionId": job.fields["connectionId"],
        "metadata": job.fields["metadata"],
        "createdAt": job.created,
    }


def _job(request: Request, connection: str, job_id: str) -> tuple[SQLAPI, BackgroundJob]:
    require_api_token(request, "sql", connection)
    check_connection(state_of(request), connection)
    api = sql_api(state_of(request))
    job = api.jobs.get(job_id)
    if job is None or job.fields.get("connection") != connection:
        raise EmulatorHTTPError(404, f"Job not found: {job_id}")
    return api, job


@router.post("/v3/sql/{connection}/job", response_model=None)
async def create_job(request: Request, connection: str) -> dict[str, Any] | JSONResponse:
    """Start a job (``query``, ``queryParameters``, ``metadata``); it runs after ``job_duration`` s."""
    issued = require_api_token(request, "sql", connection)
    state = state_of(request)
    check_connection(state, connection)
    body = await json_body(request)
    sql = body.get("query")
    if not isinstance(sql, str) or not sql.strip():
        raise EmulatorHTTPError(400, "Missing query: set query")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise EmulatorHTTPError(400, "metadata must be an object")
    if quirks_of(state).metadata_as_strings:
        metadata = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    params = _parameters(body.get("queryParameters"), quirks_of(state).max_query_parameters)
    api = sql_api(state)
    fields = {
        "connection": connection,
        "connectionId": f"conn_{connection}",
        "accountId": "ac_emulator",
        "userId": issued.subject,
        "metadata": metadata,
        "query": sql,
        "queryParameters": params,
    }
    job = BackgroundJob(new_job_id("job"), api.settings.job_duration, fields)
    api.jobs.add(job)
    state.record("sql_job", issued.subject)
    job.start(_job_work(state, sql, params, connection))
    return created_then_503(state) or _created(job)


def created_then_503(state: EmulatorState) -> JSONResponse | None:
    """The quirk ``created_then_503``: a 503 for a creation that was carried out, or None."""
    quirks = quirks_of(state)
    with state.lock:
        if quirks.created_then_503 <= 0:
            return None
        quirks.created_then_503 -= 1
    return JSONResponse({"error": "Service Unavailable", "status": 503}, status_code=503)


def refuse_finished_cancel(state: EmulatorState, job: BackgroundJob) -> None:
    """The quirk ``cancel_finished_400``: a 400 for cancelling a job that had already ended."""
    if quirks_of(state).cancel_finished_400 and not job.active:
        raise EmulatorHTTPError(400, f"Job {job.job_id} has already finished and cannot be cancelled")


@router.get("/v3/sql/{connection}/job/{job_id}")
async def get_job(request: Request, connection: str, job_id: str) -> dict[str, Any]:
    """A job's state."""
    _, job = _job(request, connection, job_id)
    return _render(state_of(request), job)


@router.delete("/v3/sql/{connection}/job/{job_id}")
async def cancel_job(request: Request, connection: str, job_id: str) -> dict[str, Any]:
    """Cancel a job (a finished job is returned unchanged)."""
    _, job = _job(request, connection, job_id)
    refuse_finished_cancel(state_of(request), job)
    if job.cancel():
        state_of(request).record("sql_job_cancelled", job_id)
    return _render(state_of(request), job)


@router.get("/v3/sql/jobs")
async def list_jobs(request: Request) -> list[dict[str, Any]]:
    """Every job created since ``created_since`` (ISO 8601), newest first, as a bare array."""
    require_api_token(request, "sql")
    api = sql_api(state_of(request))
    since, wanted = _list_filters(request)
    return [
        _created(job)
        for job in api.jobs.newest_first()
        if job.created_at >= since and all(job.fields["metadata"].get(k) == v for k, v in wanted.items())
    ]


def _list_filters(request: Request) -> tuple[float, dict[str, Any]]:
    raw_since = request.query_params.get("created_since")
    try:
        since = dt.datetime.fromisoformat(raw_since.replace("Z", "+00:00")).timestamp() if raw_since else 0.0
    except ValueError:
        raise EmulatorHTTPError(400, "created_since must be an ISO 8601 time") from None
    raw_metadata = request.query_params.get("metadata")
    try:
        wanted = json.loads(raw_metadata) if raw_metadata else {}
    except ValueError:
        wanted = None
    if not isinstance(wanted, dict):
        raise EmulatorHTTPError(400, "metadata must be a JSON object")
    return since, wanted
