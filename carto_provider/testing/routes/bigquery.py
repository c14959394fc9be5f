"""``/bigquery/v2``: the CARTO Data Warehouse, the BigQuery REST API subset ``google-cloud-bigquery`` uses.

Served: jobs (insert, query, get, getQueryResults, cancel), multipart and resumable uploads of load
jobs, tabledata (list, insertAll), datasets (insert, list, get, delete) and tables (insert, list, get,
delete). Storage and SQL are the shared :mod:`~carto_provider.testing.warehouse`.

Every request needs a DW token (``GET /v3/connections/carto-dw/token``) that has not expired; else
BigQuery's 401, which makes google-auth refresh the credentials and retry. Each 401 is recorded as the
event ``bigquery_unauthorized``. Errors have BigQuery's shape
``{"error": {"code", "message", "errors": [{"reason", "message", "domain"}], "status"}}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import secrets
import time
from collections.abc import Callable, Coroutine
from email import policy
from email.parser import BytesParser
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from carto_provider.testing.bigquery_jobs import (
    DEFAULT_LOCATION,
    BigQueryState,
    Job,
    bigquery_state,
    cancel,
    load_work,
    new_job_id,
    query_work,
    register,
    start,
    wait,
)
from carto_provider.testing.routes import state_of
from carto_provider.testing.routes.common import bearer_token
from carto_provider.testing.warehouse import QueryResult, Warehouse, WarehouseError, get_warehouse

PREFIX = "/bigquery/v2/projects/{project}"
UPLOAD_PREFIX = "/upload/bigquery/v2/projects/{project}"
DEFAULT_PAGE_ROWS = 10_000
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
}
#: The REST API writes schemas with the legacy type names, whatever name created the field.
_REST_TYPE_NAMES = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}
_REASON_STATUS = {"notFound": 404, "duplicate": 409, "authError": 401, "accessDenied": 403}
_UNAUTHORIZED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential."
)


class BigQueryHTTPError(Exception):
    """Rendered as BigQuery's error body with ``status``."""

    def __init__(self, status: int, message: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.body = {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
                "status": _STATUS.get(status, "INTERNAL"),
            }
        }

    @classmethod
    def from_warehouse(cls, exc: WarehouseError) -> BigQueryHTTPError:
        """The HTTP error for a warehouse failure (404 notFound, 409 duplicate, else 400)."""
        return cls(_REASON_STATUS.get(exc.reason, 400), str(exc), exc.reason)


class BigQueryRoute(APIRoute):
    """Renders :class:`BigQueryHTTPError` and :class:`WarehouseError` the way BigQuery does."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def render_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except WarehouseError as exc:
                error = BigQueryHTTPError.from_warehouse(exc)
            except BigQueryHTTPError as exc:
                error = exc
            return JSONResponse(error.body, status_code=error.status, headers=error.headers)

        return render_errors


router = APIRouter(route_class=BigQueryRoute)


def authorize(request: Request) -> None:
    """Accept a valid DW token only; else BigQuery's 401 (recorded as ``bigquery_unauthorized``)."""
    state = state_of(request)
    if state.check_token(bearer_token(request), kinds=("dw",)) is None:
        state.record("bigquery_unauthorized")
        raise BigQueryHTTPError(
            401,
            _UNAUTHORIZED,
            "authError",
            {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
        )


def _services(request: Request) -> tuple[BigQueryState, Warehouse]:
    authorize(request)
    state = state_of(request)
    return bigquery_state(state), get_warehouse(state)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BigQueryHTTPError(400, "Invalid JSON payload received.", "invalid") from None
    if not isinstance(body, dict):
        raise BigQueryHTTPError(400, "Invalid JSON payload received: expected an object.", "invalid")
    return body


def _millis(seconds: float | None) -> str | None:
    return None if seconds is None else str(int(seconds * 1000))


# ---------------------------------------------------------------------------- jobs


@router.post(PREFIX + "/jobs")
async def insert_job(project: str, request: Request) -> dict[str, Any]:
    """``jobs.insert``: a query job (load jobs come through the upload endpoints)."""
    bq, warehouse = _services(request)
    body = await _json_body(request)
    configuration = body.get("configuration") or {}
    if "query" not in configuration:
        kind = next(iter(configuration), "none")
        raise BigQueryHTTPError(400, f"Unsupported by the CARTO emulator: {kind} jobs", "invalid")
    job = register(bq, _new_job(project, body, configuration))
    await _start(bq, job, query_work(warehouse))
    return job_resource(job)


@router.post(PREFIX + "/queries")
async def query(project: str, request: Request) -> dict[str, Any]:
    """``jobs.query``: run a query and wait up to ``timeoutMs`` for its first page."""
    bq, warehouse = _services(request)
    body = await _json_body(request)
    request_id = body.get("requestId")
    with bq.lock:
        known = bq.request_ids.get(request_id) if request_id else None
    if known is not None:
        job = bq.jobs[known]
    else:
        config_keys = (
            "query",
            "queryParameters",
            "parameterMode",
            "useLegacySql",
            "defaultDataset",
            "dryRun",
        )
        configuration = {"query": {k: body[k] for k in config_keys if k in body}, "jobType": "QUERY"}
        reference = {"jobReference": {"jobId": new_job_id(), "location": body.get("location")}}
        job = register(bq, _new_job(project, reference, configuration))
        if request_id:
            with bq.lock:
                bq.request_ids[request_id] = (job.project, job.job_id)
        await _start(bq, job, query_work(warehouse))
    complete = await _wait(bq, job, body.get("timeoutMs"))
    format_options = body.get("formatOptions") or {}
    response = query_results(job, complete, body.get("maxResults"), 0, None, _truthy(format_options))
    response["kind"] = "bigquery#queryResponse"
    response["queryId"] = job.job_id
    return response


@router.get(PREFIX + "/queries/{job_id}")
async def get_query_results(project: str, job_id: str, request: Request) -> dict[str, Any]:
    """``jobs.getQueryResults``: long-poll for the job, then page through its rows."""
    bq, _ = _services(request)
    job = _job(bq, project, job_id)
    params = request.query_params
    complete = await _wait(bq, job, params.get("timeoutMs"))
    return query_results(
        job,
        complete,
        params.get("maxResults"),
        int(params.get("startIndex") or 0),
        params.get("pageToken"),
        _truthy(params.get("formatOptions.useInt64Timestamp")),
    )


@router.get(PREFIX + "/jobs/{job_id}")
async def get_job(project: str, job_id: str, request: Request) -> dict[str, Any]:
    """``jobs.get``."""
    bq, _ = _services(request)
    return job_resource(_job(bq, project, job_id))


@router.post(PREFIX + "/jobs/{job_id}/cancel")
async def cancel_job(project: str, job_id: str, request: Request) -> dict[str, Any]:
    """``jobs.cancel``: stops a job that has not finished."""
    bq, _ = _services(request)
    job = _job(bq, project, job_id)
    cancel(job)
    return {"kind": "bigquery#jobCancelResponse", "job": job_resource(job)}


def _new_job(project: str, body: dict[str, Any], configuration: dict[str, Any]) -> Job:
    reference = body.get("jobReference") or {}
    return Job(
        project=project,
        job_id=reference.get("jobId") or new_job_id(),
        location=reference.get("location") or DEFAULT_LOCATION,
        configuration=configuration,
    )


def _job(bq: BigQueryState, project: str, job_id: str) -> Job:
    with bq.lock:
        job = bq.jobs.get((project, job_id))
    if job is None:
        raise BigQueryHTTPError(404, f"Not found: Job {project}:{job_id}", "notFound")
    return job


async def _start(bq: BigQueryState, job: Job, work: Callable[[Job], None]) -> None:
    # Off the event loop: a job may run SQL for a while, and other requests must still be served.
    await run_in_threadpool(start, bq, job, work)


async def _wait(bq: BigQueryState, job: Job, timeout_ms: Any) -> bool:
    return job.done.is_set() or await run_in_threadpool(wait, bq, job, timeout_ms)


def _truthy(value: Any) -> bool:
    if isinstance(value, dict):
        value = value.get("useInt64Timestamp")
    return str(value).lower() == "true"


def job_resource(job: Job) -> dict[str, Any]:
    """A job as ``jobs.get`` returns it."""
    reference = {"projectId": job.project, "jobId": job.job_id, "location": job.location}
    status: dict[str, Any] = {"state": "DONE" if job.done.is_set() else "RUNNING"}
    if job.error:
        status["errorResult"] = job.error
        status["errors"] = job.errors
    statistics: dict[str, Any] = {"creationTime": _millis(job.created), "totalBytesProcessed": "0"}
    if job.started:
        statistics["startTime"] = _millis(job.started)
    if job.ended:
        statistics["endTime"] = _millis(job.ended)
    if job.job_type == "QUERY":
        statistics["query"] = _query_statistics(job)
    elif job.output_rows is not None:
        statistics["load"] = {"outputRows": str(job.output_rows), "inputFiles": "1", "badRecords": "0"}
    return {
        "kind": "bigquery#job",
        "id": f"{job.project}:{job.location}.{job.job_id}",
        "selfLink": "",
        "user_email": "carto-dw@emulator.carto",
        "jobReference": reference,
        "configuration": {**job.configuration, "jobType": job.job_type},
        "status": status,
        "statistics": statistics,
    }


def _query_statistics(job: Job) -> dict[str, Any]:
    stats: dict[str, Any] = {"totalBytesProcessed": "0", "totalBytesBilled": "0", "cacheHit": False}
    if job.result is not None:
        stats["statementType"] = job.result.statement_type
        if job.result.num_dml_affected_rows is not None:
            stats["numDmlAffectedRows"] = str(job.result.num_dml_affected_rows)
        if job.result.schema:
            stats["schema"] = rest_schema(job.result.schema)
    return stats


def query_results(
    job: Job, complete: bool, max_results: Any, start: int, page_token: str | None, int64_timestamps: bool
) -> dict[str, Any]:
    """A page of a query job's results (``getQueryResults``/``jobs.query`` body)."""
    reference = {"projectId": job.project, "jobId": job.job_id, "location": job.location}
    response: dict[str, Any] = {
        "kind": "bigquery#getQueryResultsResponse",
        "jobReference": reference,
        "jobComplete": complete,
    }
    if not complete:
        return response
    if job.error:
        raise BigQueryHTTPError(
            _REASON_STATUS.get(job.error["reason"], 400), job.error["message"], job.error["reason"]
        )
    result = job.result or QueryResult(statement_type="SELECT")
    response.update(_page(result, max_results, start, page_token, int64_timestamps))
    response.update({"totalBytesProcessed": "0", "cacheHit": False})
    if result.num_dml_affected_rows is not None:
        response["numDmlAffectedRows"] = str(result.num_dml_affected_rows)
    return response


def _page(
    result: QueryResult, max_results: Any, start: int, page_token: str | None, int64_timestamps: bool
) -> dict[str, Any]:
    offset = int(page_token) if page_token and page_token.isdigit() else max(0, start)
    size = int(max_results) if max_results not in (None, "") else DEFAULT_PAGE_ROWS
    chunk = result.rows[offset : offset + size]
    page: dict[str, Any] = {"schema": rest_schema(result.schema), "totalRows": str(len(result.rows))}
    page["rows"] = [encode_row(row, result.schema, int64_timestamps) for row in chunk]
    if offset + len(chunk) < len(result.rows):
        page["pageToken"] = str(offset + len(chunk))
    return page


# ---------------------------------------------------------------------------- row encoding


def rest_schema(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """A warehouse schema as the REST API shows it: ``{"fields": [...]}`` with legacy type names."""

    def rest_field(f: dict[str, Any]) -> dict[str, Any]:
        out = {**f, "type": _REST_TYPE_NAMES.get(f["type"], f["type"])}
        if f.get("fields"):
            out["fields"] = [rest_field(c) for c in f["fields"]]
        return out

    return {"fields": [rest_field(f) for f in fields]}


def encode_row(row: dict[str, Any], schema: list[dict[str, Any]], int64_timestamps: bool) -> dict[str, Any]:
    """A row in BigQuery's REST form ``{"f": [{"v": ...}]}`` (scalars as strings)."""
    return {"f": [{"v": encode_value(row.get(f["name"]), f, int64_timestamps)} for f in schema]}


def encode_value(value: Any, field: dict[str, Any], int64_timestamps: bool) -> Any:
    """One cell in BigQuery's REST form."""
    if value is None:
        return None
    if field.get("mode") == "REPEATED":
        element = {**field, "mode": "NULLABLE"}
        return [{"v": encode_value(v, element, int64_timestamps)} for v in value]
    kind = field["type"]
    if kind == "RECORD":
        return encode_row(value, field.get("fields") or [], int64_timestamps)
    if kind == "BOOL":
        return "true" if value else "false"
    if kind == "BYTES":
        return base64.b64encode(value).decode()
    if kind == "TIMESTAMP":
        micros = (value - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)
        return str(micros) if int64_timestamps else f"{micros / 1e6:.6f}"
    if kind in ("DATE", "DATETIME", "TIME"):
        return value.isoformat()
    if kind == "FLOAT64":
        return _encode_float(float(value))
    if kind in ("NUMERIC", "BIGNUMERIC") and isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    if kind == "INTERVAL" and isinstance(value, dt.timedelta):
        seconds = value.seconds + value.microseconds / 1e6
        return f"0-0 {value.days} 0:0:{seconds:g}"
    return str(value)


def _encode_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


# ---------------------------------------------------------------------------- load jobs (uploads)


@router.post(UPLOAD_PREFIX + "/jobs")
async def upload_job(project: str, request: Request) -> Response:
    """Load job uploads: ``uploadType=multipart`` (config + data) or ``resumable`` (config, then PUT)."""
    bq, warehouse = _services(request)
    upload_type = request.query_params.get("uploadType")
    if upload_type == "multipart":
        config, data = _multipart(request.headers.get("content-type", ""), await request.body())
        return JSONResponse(await _start_load(bq, warehouse, project, config, data))
    if upload_type == "resumable":
        config = await _json_body(request)
        upload_id = secrets.token_urlsafe(16)
        with bq.lock:
            bq.uploads[upload_id] = {"project": project, "config": config, "data": bytearray()}
        base = str(request.base_url).rstrip("/")
        location = f"{base}{request.url.path}?uploadType=resumable&upload_id={upload_id}"
        return Response(status_code=200, headers={"Location": location})
    raise BigQueryHTTPError(400, f"Unsupported by the CARTO emulator: uploadType={upload_type}", "invalid")


@router.put(UPLOAD_PREFIX + "/jobs")
async def upload_chunk(project: str, request: Request) -> Response:
    """A chunk of a resumable upload; the last one starts the load job."""
    bq, warehouse = _services(request)
    upload_id = request.query_params.get("upload_id", "")
    with bq.lock:
        upload = bq.uploads.get(upload_id)
    if upload is None:
        raise BigQueryHTTPError(404, f"Not found: upload {upload_id}", "notFound")
    upload["data"].extend(await request.body())
    total = request.headers.get("content-range", "").rpartition("/")[2]
    if total.isdigit() and len(upload["data"]) < int(total):
        return Response(status_code=308, headers={"Range": f"bytes=0-{len(upload['data']) - 1}"})
    with bq.lock:
        bq.uploads.pop(upload_id, None)
    return JSONResponse(await _start_load(bq, warehouse, project, upload["config"], bytes(upload["data"])))


def _payload(part: Any) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    parts = list(message.iter_parts()) if message.is_multipart() else []
    if len(parts) != 2:
        raise BigQueryHTTPError(400, "A multipart upload needs the job configuration and the data", "invalid")
    metadata, data = (_payload(part) for part in parts)
    try:
        config = json.loads(metadata)
    except ValueError:
        raise BigQueryHTTPError(
            400, "Invalid JSON payload received in the job configuration.", "invalid"
        ) from None
    return config, data


async def _start_load(
    bq: BigQueryState, warehouse: Warehouse, project: str, body: dict[str, Any], data: bytes
) -> dict[str, Any]:
    configuration = body.get("configuration") or {}
    if "load" not in configuration:
        raise BigQueryHTTPError(400, "An upload must carry a load job configuration", "invalid")
    job = register(bq, _new_job(project, body, configuration))
    await _start(bq, job, load_work(warehouse, data))
    return job_resource(job)


# ---------------------------------------------------------------------------- datasets


@router.get(PREFIX + "/datasets")
async def list_datasets(project: str, request: Request) -> dict[str, Any]:
    """``datasets.list``."""
    _, warehouse = _services(request)
    return {
        "kind": "bigquery#datasetList",
        "datasets": [
            {
                "kind": "bigquery#dataset",
                "id": f"{project}:{d}",
                "datasetReference": {"projectId": project, "datasetId": d},
                "location": DEFAULT_LOCATION,
            }
            for d in warehouse.list_datasets()
        ],
    }


@router.post(PREFIX + "/datasets")
async def insert_dataset(project: str, request: Request) -> dict[str, Any]:
    """``datasets.insert`` (409 when it exists)."""
    _, warehouse = _services(request)
    body = await _json_body(request)
    dataset = (body.get("datasetReference") or {}).get("datasetId")
    if not dataset:
        raise BigQueryHTTPError(400, "Required parameter is missing: datasetReference.datasetId", "required")
    if warehouse.dataset_exists(dataset):
        raise BigQueryHTTPError(409, f"Already Exists: Dataset {project}:{dataset}", "duplicate")
    warehouse.create_dataset(dataset)
    return dataset_resource(project, dataset)


@router.get(PREFIX + "/datasets/{dataset}")
async def get_dataset(project: str, dataset: str, request: Request) -> dict[str, Any]:
    """``datasets.get``."""
    _, warehouse = _services(request)
    _require_dataset(warehouse, project, dataset)
    return dataset_resource(project, dataset)


@router.delete(PREFIX + "/datasets/{dataset}")
async def delete_dataset(project: str, dataset: str, request: Request) -> Response:
    """``datasets.delete`` (``deleteContents=true`` for a dataset with tables)."""
    _, warehouse = _services(request)
    _require_dataset(warehouse, project, dataset)
    warehouse.delete_dataset(dataset, delete_contents=_truthy(request.query_params.get("deleteContents")))
    return Response(status_code=204)


def dataset_resource(project: str, dataset: str) -> dict[str, Any]:
    """A dataset as ``datasets.get`` returns it."""
    return {
        "kind": "bigquery#dataset",
        "id": f"{project}:{dataset}",
        "datasetReference": {"projectId": project, "datasetId": dataset},
        "location": DEFAULT_LOCATION,
    }


def _require_dataset(warehouse: Warehouse, project: str, dataset: str) -> None:
    if not warehouse.dataset_exists(dataset):
        raise BigQueryHTTPError(404, f"Not found: Dataset {project}:{dataset}", "notFound")


# ---------------------------------------------------------------------------- tables


@router.get(PREFIX + "/datasets/{dataset}/tables")
async def list_tables(project: str, dataset: str, request: Request) -> dict[str, Any]:
    """``tables.list``."""
    _, warehouse = _services(request)
    _require_dataset(warehouse, project, dataset)
    tables = warehouse.list_tables(dataset)
    return {
        "kind": "bigquery#tableList",
        "totalItems": len(tables),
        "tables": [
            {
                "kind": "bigquery#table",
                "id": f"{project}:{dataset}.{name}",
                "tableReference": {"projectId": project, "datasetId": dataset, "tableId": name},
                "type": kind,
            }
            for name, kind in tables
        ],
    }


@router.post(PREFIX + "/datasets/{dataset}/tables")
async def insert_table(project: str, dataset: str, request: Request) -> dict[str, Any]:
    """``tables.insert``: a table from a schema, or a view from ``view.query``."""
    bq, warehouse = _services(request)
    body = await _json_body(request)
    table = (body.get("tableReference") or {}).get("tableId")
    if not table:
        raise BigQueryHTTPError(400, "Required parameter is missing: tableReference.tableId", "required")
    _require_dataset(warehouse, project, dataset)
    if warehouse.table_kind(dataset, table) is not None:
        raise BigQueryHTTPError(409, f"Already Exists: Table {project}:{dataset}.{table}", "duplicate")
    view = body.get("view") or {}
    if view.get("query"):
        warehouse.execute(f"CREATE VIEW `{dataset}.{table}` AS {view['query']}")
    else:
        warehouse.create_table(dataset, table, (body.get("schema") or {}).get("fields") or [])
    with bq.lock:
        bq.table_meta[(dataset, table)] = {
            "creationTime": time.time(),
            **{k: body[k] for k in ("description", "labels", "friendlyName") if k in body},
        }
    return table_resource(bq, warehouse, project, dataset, table)


@router.get(PREFIX + "/datasets/{dataset}/tables/{table}")
async def get_table(project: str, dataset: str, table: str, request: Request) -> dict[str, Any]:
    """``tables.get``."""
    bq, warehouse = _services(request)
    return table_resource(bq, warehouse, project, dataset, table)


@router.delete(PREFIX + "/datasets/{dataset}/tables/{table}")
async def delete_table(project: str, dataset: str, table: str, request: Request) -> Response:
    """``tables.delete`` (404 when it does not exist)."""
    bq, warehouse = _services(request)
    if not warehouse.drop_table(dataset, table):
        raise BigQueryHTTPError(404, f"Not found: Table {project}:{dataset}.{table}", "notFound")
    with bq.lock:
        bq.table_meta.pop((dataset, table), None)
    return Response(status_code=204)


def table_resource(
    bq: BigQueryState, warehouse: Warehouse, project: str, dataset: str, table: str
) -> dict[str, Any]:
    """A table as ``tables.get`` returns it (404 when it does not exist)."""
    with warehouse.lock:
        kind = warehouse.table_kind(dataset, table)
        schema = warehouse.table_schema(dataset, table) if kind else None
        if kind is None or schema is None:
            raise BigQueryHTTPError(404, f"Not found: Table {project}:{dataset}.{table}", "notFound")
        rows = warehouse.num_rows(dataset, table) if kind == "TABLE" else 0
    with bq.lock:
        meta = bq.table_meta.setdefault((dataset, table), {"creationTime": time.time()})
    created = _millis(meta["creationTime"])
    resource = {
        "kind": "bigquery#table",
        "id": f"{project}:{dataset}.{table}",
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
        "schema": rest_schema(schema),
        "type": kind,
        "numRows": str(rows),
        "numBytes": "0",
        "creationTime": created,
        "lastModifiedTime": created,
        "location": DEFAULT_LOCATION,
        **{k: v for k, v in meta.items() if k != "creationTime"},
    }
    return resource


@router.get(PREFIX + "/datasets/{dataset}/tables/{table}/data")
async def list_table_data(project: str, dataset: str, table: str, request: Request) -> dict[str, Any]:
    """``tabledata.list``: a table's rows in storage order, paged."""
    _, warehouse = _services(request)
    kind = warehouse.table_kind(dataset, table)
    if kind is None:
        raise BigQueryHTTPError(404, f"Not found: Table {project}:{dataset}.{table}", "notFound")
    if kind != "TABLE":
        raise BigQueryHTTPError(400, f"Cannot list a table of type {kind}.", "invalid")
    params = request.query_params
    selected = [f.strip() for f in (params.get("selectedFields") or "").split(",") if f.strip()]
    token = params.get("pageToken")
    offset = int(token) if token and token.isdigit() else int(params.get("startIndex") or 0)
    size = int(params.get("maxResults") or DEFAULT_PAGE_ROWS)
    result = warehouse.read_rows(dataset, table, start=offset, limit=size, fields=selected or None)
    total = warehouse.num_rows(dataset, table)
    int64 = _truthy(params.get("formatOptions.useInt64Timestamp"))
    response: dict[str, Any] = {
        "kind": "bigquery#tableDataList",
        "totalRows": str(total),
        "rows": [encode_row(row, result.schema, int64) for row in result.rows],
    }
    if offset + len(result.rows) < total:
        response["pageToken"] = str(offset + len(result.rows))
    return response


@router.post(PREFIX + "/datasets/{dataset}/tables/{table}/insertAll")
async def insert_all(project: str, dataset: str, table: str, request: Request) -> dict[str, Any]:
    """``tabledata.insertAll`` (streaming inserts); bad rows come back in ``insertErrors``."""
    _, warehouse = _services(request)
    body = await _json_body(request)
    rows = [entry.get("json") if isinstance(entry, dict) else entry for entry in body.get("rows") or []]
    if warehouse.table_kind(dataset, table) is None:
        raise BigQueryHTTPError(404, f"Not found: Table {project}:{dataset}.{table}", "notFound")
    skip_invalid = bool(body.get("skipInvalidRows"))
    errors = warehouse.insert_rows(
        dataset,
        table,
        rows,
        skip_invalid_rows=skip_invalid,
        ignore_unknown_values=bool(body.get("ignoreUnknownValues")),
    )
    response: dict[str, Any] = {"kind": "bigquery#tableDataInsertAllResponse"}
    if errors:
        stopped = [] if skip_invalid else [i for i in range(len(rows)) if i not in errors]
        response["insertErrors"] = [
            {"index": i, "errors": [{"reason": "invalid", "location": "", "debugInfo": "", "message": m}]}
            for i, m in sorted(errors.items())
        ] + [
            {"index": i, "errors": [{"reason": "stopped", "location": "", "debugInfo": "", "message": ""}]}
            for i in stopped
        ]
    return response
