"""BigQuery jobs in the emulator: query and load jobs run on the warehouse, with BigQuery's lifecycle.

A job is ``RUNNING`` for :attr:`BigQuerySettings.job_duration` seconds (0 by default), then runs on
the warehouse and is ``DONE``, with an ``errorResult`` when it failed or was cancelled. Tests make a
job outlive a DW token by raising ``job_duration``::

    from carto_provider.testing.bigquery_jobs import bigquery_settings

    bigquery_settings(carto_emulator).job_duration = 5.0     # jobs take 5 s
    bigquery_settings(carto_emulator).max_poll_wait = 0.2    # getQueryResults long-polls 0.2 s at most
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from carto_provider.testing.bigquery_types import coerce_json_value, infer_schema, standard_type
from carto_provider.testing.state import EmulatorState
from carto_provider.testing.warehouse import QueryResult, Warehouse, WarehouseError

DEFAULT_LOCATION = "US"


@dataclass
class BigQuerySettings:
    """Knobs for tests; change them on a running emulator through :func:`bigquery_settings`."""

    #: Seconds a job stays RUNNING before it executes (lets a query outlive DW tokens).
    job_duration: float = 0.0
    #: Longest a ``getQueryResults``/``jobs.query`` call waits for its job (BigQuery: about 10 s).
    max_poll_wait: float = 10.0


@dataclass
class Job:
    """One BigQuery job."""

    project: str
    job_id: str
    location: str
    configuration: dict[str, Any]
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    result: QueryResult | None = None
    error: dict[str, Any] | None = None  # BigQuery's errorResult
    errors: list[dict[str, Any]] = field(default_factory=list)
    output_rows: int | None = None  # load jobs
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def job_type(self) -> str:
        """``QUERY`` or ``LOAD``."""
        return "LOAD" if "load" in self.configuration else "QUERY"


@dataclass
class BigQueryState:
    """The emulator's BigQuery: settings, jobs, pending resumable uploads, table metadata."""

    settings: BigQuerySettings = field(default_factory=BigQuerySettings)
    jobs: dict[tuple[str, str], Job] = field(default_factory=dict)
    request_ids: dict[str, tuple[str, str]] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    table_meta: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def bigquery_state(state: EmulatorState) -> BigQueryState:
    """The emulator's BigQuery state, created on first use."""
    return state.extension("bigquery", BigQueryState)


def bigquery_settings(emulator: Any) -> BigQuerySettings:
    """The BigQuery settings of a ``CartoEmulator`` (or of its ``EmulatorState``)."""
    return bigquery_state(getattr(emulator, "state", emulator)).settings


def new_job_id() -> str:
    """A job id shaped like the client's (``job_<hex>``)."""
    return "job_" + secrets.token_hex(12)


# ---------------------------------------------------------------------------- lifecycle


def register(bq: BigQueryState, job: Job) -> Job:
    """Record a new job; a job id already used answers 409 like BigQuery."""
    with bq.lock:
        key = (job.project, job.job_id)
        if key in bq.jobs:
            raise WarehouseError(
                f"Already Exists: Job {job.project}:{job.location}.{job.job_id}", "duplicate"
            )
        bq.jobs[key] = job
    return job


def start(bq: BigQueryState, job: Job, work: Callable[[Job], None]) -> None:
    """Run ``work`` now, or after ``job_duration`` seconds on a timer thread."""
    delay = bq.settings.job_duration
    if delay <= 0:
        finish(job, work)
        return
    timer = threading.Timer(delay, finish, (job, work))
    timer.daemon = True
    timer.start()


def finish(job: Job, work: Callable[[Job], None]) -> None:
    """Execute a job once (unless it was cancelled) and mark it DONE."""
    with job.lock:
        if job.done.is_set():
            return
        job.started = time.time()
        try:
            work(job)
        except WarehouseError as exc:
            job.error = {"reason": exc.reason, "location": "query", "message": str(exc)}
            job.errors = job.errors or [dict(job.error)]
        job.ended = time.time()
        job.done.set()


def cancel(job: Job) -> None:
    """Cancel a job that has not finished (BigQuery's ``stopped`` error); a DONE job stays as it is."""
    with job.lock:
        if job.done.is_set():
            return
        job.error = {
            "reason": "stopped",
            "message": "Job execution was cancelled: User requested cancellation",
        }
        job.errors = [dict(job.error)]
        job.ended = time.time()
        job.done.set()


def wait(bq: BigQueryState, job: Job, timeout_ms: Any) -> bool:
    """Wait for the job up to ``timeoutMs`` (capped by ``max_poll_wait``); True when it is DONE."""
    try:
        requested = float(timeout_ms) / 1000 if timeout_ms is not None else bq.settings.max_poll_wait
    except (TypeError, ValueError):
        requested = bq.settings.max_poll_wait
    return job.done.wait(max(0.0, min(requested, bq.settings.max_poll_wait)))


# ---------------------------------------------------------------------------- query jobs


def query_work(warehouse: Warehouse) -> Callable[[Job], None]:
    """The work of a query job: its SQL with its parameters on the warehouse."""

    def work(job: Job) -> None:
        config = job.configuration["query"]
        if config.get("useLegacySql") is True:
            raise WarehouseError("Unsupported by the CARTO emulator: legacy SQL (useLegacySql=true)")
        if config.get("destinationTable"):
            raise WarehouseError(
                "Unsupported by the CARTO emulator: query destinationTable (use CREATE TABLE ... AS SELECT)"
            )
        params = query_parameters(config.get("queryParameters") or [])
        default_dataset = (config.get("defaultDataset") or {}).get("datasetId")
        if config.get("dryRun") or job.configuration.get("dryRun"):
            warehouse.translate(config.get("query", ""))
            return
        job.result = warehouse.execute(config.get("query", ""), params, default_dataset=default_dataset)

    return work


def query_parameters(parameters: list[dict[str, Any]]) -> dict[str, Any] | list[Any] | None:
    """BigQuery's REST ``queryParameters`` as the warehouse's named dict or positional list."""
    if not parameters:
        return None
    try:
        values = [
            _parameter_value(p.get("parameterType") or {}, p.get("parameterValue") or {}) for p in parameters
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise WarehouseError(f"Invalid query parameter value: {exc}") from None
    if all(p.get("name") for p in parameters):
        return {p["name"]: v for p, v in zip(parameters, values, strict=True)}
    return values


def _parameter_value(ptype: dict[str, Any], pvalue: dict[str, Any]) -> Any:
    kind = standard_type(ptype.get("type", "STRING"))
    if kind == "ARRAY":
        return [_parameter_value(ptype.get("arrayType") or {}, v) for v in pvalue.get("arrayValues") or []]
    if kind == "RECORD":
        members = pvalue.get("structValues") or {}
        return {
            s["name"]: _parameter_value(s.get("type") or {}, members.get(s["name"]) or {})
            for s in ptype.get("structTypes") or []
        }
    return coerce_json_value(pvalue.get("value"), {"name": "query parameter", "type": kind})


# ---------------------------------------------------------------------------- load jobs


def load_work(warehouse: Warehouse, data: bytes) -> Callable[[Job], None]:
    """The work of a load job: parse ``data`` and write it to the destination table atomically."""

    def work(job: Job) -> None:
        config = job.configuration["load"]
        destination = config.get("destinationTable") or {}
        dataset, table = destination.get("datasetId"), destination.get("tableId")
        if not dataset or not table:
            raise WarehouseError("Load configuration must specify destinationTable", "invalid")
        rows = parse_load_data(data, config)
        max_bad = int(config.get("maxBadRecords") or 0)
        ignore_unknown = bool(config.get("ignoreUnknownValues"))
        with warehouse.transaction():
            _prepare_destination(warehouse, job.project, dataset, table, config, rows)
            errors = warehouse.insert_rows(
                dataset, table, rows, skip_invalid_rows=max_bad > 0, ignore_unknown_values=ignore_unknown
            )
            if len(errors) > max_bad:
                job.errors = [
                    {"reason": "invalid", "location": f"row {i}", "message": m} for i, m in errors.items()
                ]
                raise WarehouseError(
                    "Error while reading data, error message: the table encountered too many errors, "
                    f"giving up. Rows: {len(rows)}; errors: {len(errors)}. Please look into the errors[] "
                    "collection for more details.",
                    "invalid",
                )
        job.output_rows = len(rows) - len(errors)

    return work


def _prepare_destination(
    warehouse: Warehouse, project: str, dataset: str, table: str, config: dict[str, Any], rows: list[Any]
) -> None:
    fields = (config.get("schema") or {}).get("fields")
    existing = warehouse.table_schema(dataset, table)
    write = str(config.get("writeDisposition") or "WRITE_APPEND").upper()
    if existing is not None:
        if write == "WRITE_TRUNCATE":
            if fields:  # BigQuery replaces the schema too
                warehouse.drop_table(dataset, table)
                warehouse.create_table(dataset, table, fields)
            else:
                warehouse.truncate_table(dataset, table)
        elif write == "WRITE_EMPTY" and warehouse.num_rows(dataset, table):
            raise WarehouseError(f"Already Exists: Table {project}:{dataset}.{table}", "duplicate")
        return
    if str(config.get("createDisposition") or "CREATE_IF_NEEDED").upper() == "CREATE_NEVER":
        raise WarehouseError(f"Not found: Table {project}:{dataset}.{table}", "notFound")
    if not fields and config.get("autodetect"):
        fields = infer_schema(rows)
    if not fields:
        raise WarehouseError("No schema specified on job or table.", "invalid")
    if not warehouse.dataset_exists(dataset):
        raise WarehouseError(f"Not found: Dataset {project}:{dataset}", "notFound")
    warehouse.create_table(dataset, table, fields)


def parse_load_data(data: bytes, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of a load job's data: ``NEWLINE_DELIMITED_JSON`` or ``CSV`` (other formats are refused)."""
    source_format = str(config.get("sourceFormat") or "CSV").upper()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise WarehouseError("Error while reading data: the data is not UTF-8", "invalid") from None
    if source_format == "NEWLINE_DELIMITED_JSON":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise WarehouseError(
                    f"Error while reading data, error message: JSON parsing error in row starting at line "
                    f"{number}: {exc}",
                    "invalid",
                ) from None
        return rows
    if source_format == "CSV":
        return _parse_csv(text, config)
    raise WarehouseError(
        f"Unsupported by the CARTO emulator: load sourceFormat {source_format} "
        "(use NEWLINE_DELIMITED_JSON or CSV)",
        "invalid",
    )


def _parse_csv(text: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text), delimiter=config.get("fieldDelimiter") or ",")
    records = [r for r in reader if r]
    fields = (config.get("schema") or {}).get("fields")
    skip = int(config.get("skipLeadingRows") or 0)
    if fields:
        names = [f["name"] for f in fields]
    elif records:  # autodetect: the header row names the columns
        names, skip = records[0], max(skip, 1)
    else:
        return []
    convert = (lambda value: value) if fields else _csv_value  # a schema types the text itself
    return [
        {name: convert(value) for name, value in zip(names, record, strict=False) if value != ""}
        for record in records[skip:]
    ]


def _csv_value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text
