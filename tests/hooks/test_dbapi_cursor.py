"""carto_provider.api.dbapi: the PEP 249 logic around the SQL runner (a recording stand-in here; the
hook tests run it against the emulator)."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from carto_provider.api import dbapi
from carto_provider.api.jobs import CartoJob
from carto_provider.api.sql import QueryResult


class Runner:
    """Records what the cursor asked for and answers like CARTO would."""

    def __init__(self, result: QueryResult | None = None, job_status: str = "running") -> None:
        self.calls: list[tuple] = []
        self.result = result or QueryResult(
            rows=[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
            schema=[{"name": "a", "type": "integer"}, {"name": "b", "type": "string"}],
        )
        self.job_status = job_status

    def run_query(self, sql, *, connection, query_parameters=None, max_rows=None):
        self.calls.append(("query", sql, connection, query_parameters))
        return self.result

    def submit_job(self, sql, *, connection, query_parameters=None):
        self.calls.append(("job", sql, connection, query_parameters))
        return CartoJob("SQL job", "job_1", self.job_status, connection=connection)

    def wait_for_job(self, job_id, *, connection, poll_interval=10.0, timeout=None, cancel_on_timeout=True):
        self.calls.append(("wait", job_id, poll_interval, timeout))
        return CartoJob("SQL job", job_id, "success", connection=connection)


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT 1", True),
        ("  -- comment\n/* c */ (SELECT 1)", True),
        ("with x as (select 1) select * from x", True),
        ("INSERT INTO t VALUES (1)", False),
        ("CREATE TABLE t (a INT64)", False),
        ("CALL `p.d.proc`()", False),
        ("", False),
    ],
)
def test_statements_that_return_rows_are_recognised(sql, rows):
    assert dbapi.returns_rows(sql) is rows


def test_a_query_fills_description_and_rows():
    runner = Runner()
    cursor = dbapi.Connection(runner, "carto_dw").cursor()
    cursor.execute("SELECT a, b FROM t WHERE a > ?", [0])
    assert runner.calls == [("query", "SELECT a, b FROM t WHERE a > ?", "carto_dw", [0])]
    assert [d[:2] for d in cursor.description] == [("a", "integer"), ("b", "string")]
    assert cursor.rowcount == 2
    assert cursor.fetchone() == (1, "x")
    assert cursor.fetchall() == [(2, "y")]
    assert cursor.fetchone() is None


def test_a_statement_runs_as_a_job_and_is_waited_for():
    runner = Runner()
    conn = dbapi.Connection(runner, "carto_dw", poll_interval=0.5, job_timeout=30)
    cursor = conn.cursor()
    cursor.execute("UPDATE t SET a = @a", {"a": decimal.Decimal("1.50"), "when": dt.date(2024, 1, 3)})
    assert runner.calls == [
        ("job", "UPDATE t SET a = @a", "carto_dw", {"a": "1.50", "when": "2024-01-03"}),
        ("wait", "job_1", 0.5, 30),
    ]
    assert cursor.job_id == "job_1" and cursor.rowcount == -1 and cursor.description is None
    with pytest.raises(dbapi.ProgrammingError, match="returned no rows"):
        cursor.fetchall()


def test_a_failed_job_raises():
    runner = Runner(job_status="failed")
    with pytest.raises(Exception, match="failed"):
        dbapi.Connection(runner, "carto_dw").cursor().execute("DELETE FROM t WHERE TRUE")


def test_executemany_of_a_one_row_insert_is_one_statement():
    runner = Runner()
    cursor = dbapi.Connection(runner, "carto_dw").cursor()
    cursor.executemany("INSERT INTO t (a, b) VALUES (?,?)", [(1, "x"), (2, "y")])
    assert runner.calls[0] == (
        "job",
        "INSERT INTO t (a, b) VALUES (?,?), (?,?)",
        "carto_dw",
        [1, "x", 2, "y"],
    )
    runner.calls.clear()
    cursor.executemany("UPDATE t SET b = ? WHERE a = ?", [("x", 1), ("y", 2)])
    assert [c[0] for c in runner.calls] == ["job", "wait", "job", "wait"]


def test_modes_transactions_and_closing():
    runner = Runner()
    conn = dbapi.Connection(runner, "carto_dw", statement_mode="job")
    conn.cursor().execute("SELECT 1")
    assert runner.calls[0][0] == "job"
    conn.commit()  # nothing to do
    with pytest.raises(dbapi.NotSupportedError):
        conn.rollback()
    conn.close()
    with pytest.raises(dbapi.InterfaceError):
        conn.cursor()
    with pytest.raises(dbapi.InterfaceError, match="statement_mode"):
        dbapi.Connection(runner, "carto_dw", statement_mode="fast")
    with pytest.raises(dbapi.ProgrammingError, match="mapping"):
        dbapi.query_parameters("not parameters")
