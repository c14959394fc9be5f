"""The daily ETL example runs for real (dag.test on SQLite) against the emulator, polling and deferred."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict

import pytest

from carto_provider.testing.routes.imports import daily_sales_csv
from carto_provider.triggers.base import CartoJobTrigger
from tests.carto_jobs_support import (
    PROJECT,
    assert_no_secrets,
    rows,
    run_dag,
    state_name,
    stored_run_text,
    task_states,
    xcom,
)

# Shared fixtures (pytest finds fixtures among a module's attributes).

DAY = dt.date(2026, 3, 2)
MIN_REVENUE = 50.0


def expected_by_store() -> dict[int, tuple[int, int, float]]:
    """(orders, items, revenue) per store for DAY, from the source file."""
    totals: dict[int, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for row in csv.DictReader(io.StringIO(daily_sales_csv(DAY))):
        t = totals[int(row["store_id"])]
        t[0] += 1
        t[1] += int(row["quantity"])
        t[2] += float(row["amount"])
    return {s: (int(o), int(i), round(r, 2)) for s, (o, i, r) in totals.items()}


def run_example(example_dag, monkeypatch, deferrable: bool):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", str(deferrable).lower())
    dag = example_dag("carto_daily_etl")
    return run_dag(dag, DAY)


def test_daily_etl_polling_then_deferred_gives_the_same_day(airflow_db, fast_carto, example_dag, monkeypatch):
    deferred: list[str] = []
    real_run = CartoJobTrigger.run
    monkeypatch.setattr(CartoJobTrigger, "run", lambda self: deferred.append(self.job_id) or real_run(self))

    expected = expected_by_store()
    ranking = sorted(
        ((s, r) for s, (_, _, r) in expected.items() if r >= MIN_REVENUE), key=lambda x: (-x[1], x[0])
    )
    for deferrable in (False, True):
        run = run_example(example_dag, monkeypatch, deferrable)
        assert state_name(run.state) == "success", task_states(run)
        assert bool(deferred) is deferrable

        by_store = rows(
            fast_carto,
            f"SELECT store_id, orders, items, revenue FROM `{PROJECT}.shared.sales_by_store_day` "
            "WHERE sale_date = @d ORDER BY store_id",
            {"d": DAY},
        )
        assert {
            r["store_id"]: (r["orders"], r["items"], pytest.approx(r["revenue"])) for r in by_store
        } == expected
        top = xcom(run, "top_stores")
        assert [(r["store_id"], pytest.approx(r["revenue"])) for r in top] == ranking
        assert [r["revenue_rank"] for r in top] == list(range(1, len(top) + 1))
        assert xcom(run, "check_top_stores")["stores_ranked"] == len(ranking)
        assert_no_secrets(stored_run_text(run), fast_carto)

    # Two runs of the same day replaced that day's rows instead of adding to them.
    assert rows(fast_carto, f"SELECT COUNT(*) AS n FROM `{PROJECT}.shared.top_stores_daily`") == [
        {"n": len(ranking)}
    ]
    assert fast_carto.token_requests() == 1
