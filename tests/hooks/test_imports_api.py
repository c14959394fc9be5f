"""Imports through CartoImportsHook and the emulator's Imports API: CSV, GeoJSON, options, failures, 429."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.errors import CartoAPIError, CartoJobError
from carto_provider.hooks.imports import CartoImportsHook
from carto_provider.testing.routes.imports import daily_sales_csv, imports_api, serve_file
from carto_provider.testing.warehouse import WarehouseError
from tests.carto_jobs_support import POLL_SECONDS, PROJECT, rows

# Shared fixtures (pytest finds fixtures among a module's attributes).


QUICK = CartoRetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)
DAY = dt.date(2026, 1, 15)


@pytest.fixture
def hook(fast_carto) -> CartoImportsHook:
    return CartoImportsHook(retry_policy=QUICK, import_retry=CartoRetryPolicy(attempts=30, initial_wait=0.05))


def run_import(hook, carto, path: str, table: str, **options):
    job = hook.create_import(f"{carto.url}{path}", f"{PROJECT}.shared.{table}", **options)
    return hook.wait_for_import(job.job_id, poll_interval=POLL_SECONDS)


def test_csv_import_guesses_types_and_loads_every_row(hook, fast_carto):
    done = run_import(hook, fast_carto, f"/emulator/files/daily_sales/{DAY}.csv", "sales")
    expected = list(csv.DictReader(io.StringIO(daily_sales_csv(DAY))))
    assert done.body["rowsImported"] == len(expected) == 40
    assert {c["name"]: c["type"] for c in done.body["schema"]} == {
        "sale_id": "STRING",
        "sale_date": "DATE",
        "store_id": "INT64",
        "city": "STRING",
        "product": "STRING",
        "quantity": "INT64",
        "amount": "FLOAT64",
    }
    loaded = rows(fast_carto, f"SELECT * FROM `{PROJECT}.shared.sales` ORDER BY sale_id")
    assert [r["sale_id"] for r in loaded] == [r["sale_id"] for r in expected]
    assert loaded[0]["sale_date"] == DAY
    assert sum(r["amount"] for r in loaded) == pytest.approx(sum(float(r["amount"]) for r in expected))


def test_geojson_import_makes_a_geography_column(hook, fast_carto):
    done = run_import(hook, fast_carto, "/emulator/files/stores.geojson", "stores")
    assert done.body["rowsImported"] == 5
    assert done.body["schema"][-1] == {"name": "geom", "type": "GEOGRAPHY"}
    madrid = rows(
        fast_carto,
        f"SELECT name, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM `{PROJECT}.shared.stores` WHERE store_id = 1",
    )
    assert madrid == [{"name": "Gran Via", "lon": pytest.approx(-3.7038), "lat": pytest.approx(40.4168)}]


def test_without_autoguessing_every_csv_column_is_text(hook, fast_carto):
    serve_file(fast_carto.state, "typed.csv", "n,when,flag\n1,2026-01-01,true\n")
    done = run_import(hook, fast_carto, "/emulator/files/typed.csv", "typed", autoguessing=False)
    assert {c["type"] for c in done.body["schema"]} == {"STRING"}
    assert rows(fast_carto, f"SELECT * FROM `{PROJECT}.shared.typed`") == [
        {"n": "1", "when": "2026-01-01", "flag": "true"}
    ]


def test_an_existing_table_needs_overwrite(hook, fast_carto):
    serve_file(fast_carto.state, "one.csv", "v\n1\n")
    serve_file(fast_carto.state, "two.csv", "v\n2\n3\n")
    run_import(hook, fast_carto, "/emulator/files/one.csv", "t")
    with pytest.raises(CartoJobError, match=r"already exists; set overwrite to true"):
        run_import(hook, fast_carto, "/emulator/files/two.csv", "t")
    assert rows(fast_carto, f"SELECT v FROM `{PROJECT}.shared.t`") == [{"v": 1}]
    run_import(hook, fast_carto, "/emulator/files/two.csv", "t", overwrite=True)
    assert rows(fast_carto, f"SELECT v FROM `{PROJECT}.shared.t` ORDER BY v") == [{"v": 2}, {"v": 3}]


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/emulator/files/missing.csv", "HTTP 404"),
        ("/emulator/files/data.xlsx", "Unsupported file format"),
        ("/emulator/files/ragged.csv", "CSV line 3 has 1 fields; the header has 2"),
    ],
)
def test_a_failed_import_fails_with_carto_error(hook, fast_carto, path, error):
    serve_file(fast_carto.state, "data.xlsx", b"PK\x03\x04", "application/octet-stream")
    serve_file(fast_carto.state, "ragged.csv", "a,b\n1,2\n3\n")
    with pytest.raises(CartoJobError, match=error) as info:
        run_import(hook, fast_carto, path, "broken")
    assert info.value.job.outcome == "failed"


def test_a_bad_destination_is_refused_at_once(hook, fast_carto):
    with pytest.raises(CartoAPIError, match="fully-qualified table name") as info:
        hook.create_import(f"{fast_carto.url}/emulator/files/stores.geojson", "just_a_table")
    assert info.value.status == 400


def test_a_cancelled_import_loads_nothing(hook, fast_carto):
    imports_api(fast_carto.state).settings.duration = 30
    job = hook.create_import(f"{fast_carto.url}/emulator/files/stores.geojson", f"{PROJECT}.shared.never")
    assert hook.cancel_import(job.job_id).outcome == "cancelled"
    with pytest.raises(CartoJobError, match="was cancelled"):
        hook.wait_for_import(job.job_id, poll_interval=POLL_SECONDS)
    assert fast_carto.events("import_cancelled", job.job_id) == 1
    assert fast_carto.calls("GET /emulator/files/stores.geojson") == 0
    with pytest.raises(WarehouseError, match="never"):
        rows(fast_carto, f"SELECT * FROM `{PROJECT}.shared.never`")


def test_more_than_five_imports_at_once_are_waited_out(hook, fast_carto):
    """CARTO answers 429 beyond 5 running imports; the hook backs off (Retry-After) and gets in."""
    settings = imports_api(fast_carto.state).settings
    settings.duration, settings.retry_after = 0.5, 0.1
    url = f"{fast_carto.url}/emulator/files/stores.geojson"
    jobs = [hook.create_import(url, f"{PROJECT}.shared.stores_{n}") for n in range(6)]
    assert fast_carto.events("import_throttled") >= 1
    assert fast_carto.calls("POST /v3/imports") == 6 + fast_carto.events("import_throttled")
    for job in jobs:
        assert hook.wait_for_import(job.job_id, poll_interval=POLL_SECONDS).outcome == "success"


def test_a_429_that_lasts_fails_with_carto_error(fast_carto):
    settings = imports_api(fast_carto.state).settings
    settings.duration, settings.max_concurrent, settings.retry_after = 30, 1, 0.05
    hook = CartoImportsHook(import_retry=CartoRetryPolicy(attempts=3, initial_wait=0.01))
    url = f"{fast_carto.url}/emulator/files/stores.geojson"
    hook.create_import(url, f"{PROJECT}.shared.first")
    with pytest.raises(CartoAPIError, match="at most 1 may run at once") as info:
        hook.create_import(url, f"{PROJECT}.shared.second")
    assert info.value.status == 429
    assert fast_carto.events("import_throttled") == 3


def test_a_429_without_retry_after_backs_off_from_30_seconds_capped():
    """CARTO's guidance for a 6th import: back off about 30 s. Checked on the wait itself (no clock)."""
    import httpx
    import tenacity

    from carto_provider.api.retry import RetryableStatus, RetryAfterWait
    from carto_provider.hooks.imports import IMPORT_RETRY

    refused = httpx.Response(429, request=httpx.Request("POST", "http://carto/v3/imports"))
    wait = RetryAfterWait(IMPORT_RETRY)
    waits = []
    for attempt in range(1, 12):
        state = tenacity.RetryCallState(None, None, (), {})
        state.attempt_number = attempt
        state.set_exception((RetryableStatus, RetryableStatus(refused), None))
        waits.append(wait(state))
    assert 30 <= waits[0] <= 60 and waits == sorted(waits)
    # Bounded: 5 minutes in all, also for a deferrable task (issue 24: it was 30 minutes in the worker).
    assert max(waits) == IMPORT_RETRY.max_wait == 120 and IMPORT_RETRY.budget == 5 * 60


def test_a_sixth_import_without_retry_after_gets_in_once_one_ends(fast_carto):
    settings = imports_api(fast_carto.state).settings
    settings.duration, settings.retry_after = 0.5, None
    hook = CartoImportsHook(
        import_retry=CartoRetryPolicy(attempts=100, initial_wait=0.1, max_wait=0.2, budget=60)
    )
    url = f"{fast_carto.url}/emulator/files/stores.geojson"
    jobs = [hook.create_import(url, f"{PROJECT}.shared.s_{n}") for n in range(6)]
    assert fast_carto.events("import_throttled") >= 1
    assert len({job.job_id for job in jobs}) == 6


def test_the_import_budget_bounds_a_429_that_lasts(fast_carto):
    settings = imports_api(fast_carto.state).settings
    settings.duration, settings.max_concurrent, settings.retry_after = 30, 1, None
    hook = CartoImportsHook(
        import_retry=CartoRetryPolicy(attempts=1000, initial_wait=0.05, max_wait=0.05, budget=0.5)
    )
    url = f"{fast_carto.url}/emulator/files/stores.geojson"
    hook.create_import(url, f"{PROJECT}.shared.first")
    with pytest.raises(CartoAPIError, match="at most 1 may run at once") as info:
        hook.create_import(url, f"{PROJECT}.shared.second")
    assert info.value.status == 429
    assert "Still refused after 0.5 s of retries" in str(info.value) and "retry_delay" in str(info.value)
    assert 1 < fast_carto.events("import_throttled") < 100


def test_an_explicit_schema_needs_autoguessing_off_and_types_the_columns(hook, fast_carto):
    serve_file(fast_carto.state, "zips.csv", "zip,n\n01234,5\n")
    schema = [{"name": "zip", "type": "STRING"}, {"name": "n", "type": "INT64"}]
    with pytest.raises(ValueError, match="autoguessing=False"):
        hook.create_import(
            f"{fast_carto.url}/emulator/files/zips.csv", f"{PROJECT}.shared.zips", schema=schema
        )
    done = run_import(hook, fast_carto, "/emulator/files/zips.csv", "zips", autoguessing=False, schema=schema)
    assert done.body["schema"] == schema
    assert rows(fast_carto, f"SELECT * FROM `{PROJECT}.shared.zips`") == [{"zip": "01234", "n": 5}]
