"""CartoImportOperator outside a DAG run: its result, failures, deferral, and what it keeps secret."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred, redact

from carto_provider.errors import CartoJobError
from carto_provider.operators.imports import CartoImportOperator
from carto_provider.testing.routes.imports import imports_api, serve_file
from carto_provider.triggers.base import CartoJobTrigger
from tests.carto_jobs_support import PROJECT, rows

# Shared fixtures (pytest finds fixtures among a module's attributes).


SIGNATURE = "X-Amz-Signature=0123456789abcdef0123"


def operator(carto, name: str, **kwargs) -> CartoImportOperator:
    return CartoImportOperator(
        task_id="import",
        url=f"{carto.url}/emulator/files/{name}?{SIGNATURE}",
        destination=f"{PROJECT}.shared.imported",
        **kwargs,
    )


def test_returns_the_import_result_without_the_signed_url(fast_carto):
    serve_file(fast_carto.state, "points.csv", "id,name,geom\n1,a,POINT(1 2)\n2,b,POINT(3 4)\n")
    result = operator(fast_carto, "points.csv", deferrable=False).execute({})
    assert result["status"] == "success" and result["rows_imported"] == 2
    assert result["destination"] == f"{PROJECT}.shared.imported"
    assert [c["type"] for c in result["schema"]] == ["INT64", "STRING", "GEOGRAPHY"]
    assert SIGNATURE not in str(result) and "url" not in result["body"]
    assert SIGNATURE.split("=")[1] not in redact(f"downloading ...?{SIGNATURE}")
    assert rows(fast_carto, f"SELECT name FROM `{PROJECT}.shared.imported` ORDER BY id") == [
        {"name": "a"},
        {"name": "b"},
    ]


def test_a_failed_import_fails_the_task_with_carto_error(fast_carto):
    with pytest.raises(CartoJobError, match="HTTP 404"):
        operator(fast_carto, "nowhere.csv", deferrable=False).execute({})


def test_deferred_import_resumes_with_the_result(fast_carto):
    op = operator(fast_carto, "stores.geojson", deferrable=True, overwrite=True, poll_interval=0.1)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    trigger = deferred.value.trigger
    # One trigger class serves every job kind now (issue 15): the import is its kind.
    assert isinstance(trigger, CartoJobTrigger) and trigger.kind == "import" and trigger.poll_interval == 0.1
    event = asyncio.run(anext(trigger.run()))
    assert op.execute_complete({}, event.payload)["rows_imported"] == 5


def test_killing_a_polling_import_cancels_it(fast_carto):
    """on_kill, called while execute() polls (Airflow calls it from the task's SIGTERM handler)."""
    imports_api(fast_carto.state).settings.duration = 30
    op = operator(fast_carto, "stores.geojson", deferrable=False, poll_interval=0.1)
    killer = threading.Thread(target=kill_when_polled, args=(op, fast_carto, "GET /v3/imports/*"))
    killer.start()
    try:
        with pytest.raises(CartoJobError, match="was cancelled"):
            op.execute({})
    finally:
        killer.join(timeout=60)
    assert fast_carto.calls("POST /v3/imports/*/cancel") == 1


def kill_when_polled(op, carto, pattern: str) -> None:
    deadline = time.monotonic() + 30
    while carto.calls(pattern) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    op.on_kill()
