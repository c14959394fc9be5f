"""Item 9: DB-API errors are PEP 249's, INSERT detection is linear, the emulator's imports stay home.

Over real HTTP: the emulator for the DB-API and the imports, a hostile server for refusals and for a
file behind a redirect.
"""

from __future__ import annotations

import pytest

from carto_provider.api import dbapi
from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.errors import CartoAPIError, CartoJobError, ResponseTooLargeError
from carto_provider.hooks.dbapi import CartoDbApiHook
from carto_provider.hooks.imports import CartoImportsHook
from carto_provider.testing.routes.imports import imports_api, serve_file
from tests.carto_jobs_support import POLL_SECONDS, PROJECT
from tests.hostile.server import MiB, gzip_bomb, json_body

QUERY = "POST /v3/sql/carto_dw/query"


def test_a_failed_job_is_a_pep_249_database_error_chaining_carto_s(fast_carto):
    cursor = CartoDbApiHook().get_conn().cursor()
    with pytest.raises(dbapi.DatabaseError, match="no_such_table") as raised:
        cursor.execute("INSERT INTO shared.no_such_table VALUES (1)")
    assert isinstance(raised.value.__cause__, CartoJobError)
    assert raised.value.carto_error is raised.value.__cause__


def test_a_refused_query_is_a_programming_error(fast_carto):
    cursor = CartoDbApiHook().get_conn().cursor()
    with pytest.raises(dbapi.ProgrammingError) as raised:
        cursor.execute("SELECT no_such_column FROM UNNEST([1]) AS x")
    assert isinstance(raised.value.carto_error, CartoAPIError) and raised.value.carto_error.status == 400


def test_an_unavailable_carto_is_an_operational_error(hostile_conn):
    hostile_conn.on(QUERY, json_body({"error": "down for maintenance"}, 503))
    cursor = CartoDbApiHook(retry_policy=CartoRetryPolicy(attempts=1)).get_conn().cursor()
    with pytest.raises(dbapi.OperationalError, match="down for maintenance"):
        cursor.execute("SELECT 1")


def test_an_answer_above_the_budget_is_a_data_error(hostile_conn):
    hostile_conn.on(QUERY, gzip_bomb(16 * MiB))
    cursor = CartoDbApiHook(max_response_bytes=MiB).get_conn().cursor()
    with pytest.raises(dbapi.DataError) as raised:
        cursor.execute("SELECT * FROM big")
    assert isinstance(raised.value.__cause__, ResponseTooLargeError)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO t" + " " * 30_000 + "x",  # 8.6 s in the backtracking pattern it replaces
        "INSERT INTO t VALUES " + " " * 30_000 + "x",
        "INSERT INTO t VALUES (?" + " " * 30_000 + "x",
    ],
)
def test_insert_detection_reads_a_hostile_statement_once(statement):
    assert dbapi.multi_row_insert(statement, [(1,)]) is None


def test_insert_detection_still_merges_rows():
    merged = dbapi.multi_row_insert("insert into `p.d.t` (a, values) VALUES (?, ?);", [(1, 2), (3, 4)])
    assert merged == ("insert into `p.d.t` (a, values) VALUES (?, ?), (?, ?)", [1, 2, 3, 4])


def _import(url: str):
    hook = CartoImportsHook(retry_policy=CartoRetryPolicy(attempts=1))
    job = hook.create_import(url, f"{PROJECT}.shared.hostile_import", overwrite=True)
    return hook.wait_for_import(job.job_id, poll_interval=POLL_SECONDS)


def test_the_emulator_imports_only_its_own_files_or_registered_origins(fast_carto, hostile):
    hostile.on("GET /f.csv", json_body(b"a\n1\n", headers={"Content-Type": "text/csv"}))
    with pytest.raises(CartoAPIError, match="imports only files it serves") as raised:
        _import(f"{hostile.url}/f.csv")
    assert raised.value.status == 400 and hostile.calls("GET /f.csv") == 0
    imports_api(fast_carto.state).settings.allowed_origins.append(hostile.url)
    assert _import(f"{hostile.url}/f.csv").status.lower() == "success"


def test_the_emulator_does_not_follow_a_redirect(fast_carto, hostile):
    own = serve_file(fast_carto.state, "private.csv", "secret\n1\n")
    hostile.on("GET /moved.csv", json_body(b"", 302, {"Location": f"{fast_carto.url}{own}"}))
    imports_api(fast_carto.state).settings.allowed_origins.append(hostile.url)
    with pytest.raises(CartoJobError, match="HTTP 302"):
        _import(f"{hostile.url}/moved.csv")


def test_the_emulator_refuses_a_file_above_its_cap(fast_carto):
    imports_api(fast_carto.state).settings.max_file_bytes = 1024
    path = serve_file(fast_carto.state, "big.csv", "a\n" + "1\n" * 1000)
    with pytest.raises(CartoJobError, match="larger than 1,024 bytes"):
        _import(f"{fast_carto.url}{path}")
