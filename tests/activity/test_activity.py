"""Activity Data exports against the emulator over loopback HTTP: polled and deferred, into a table,
with CARTO's capitalised status words, on the accounts host, never leaking the signed URLs."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from carto_provider.api.activity import activity_body, download_urls
from carto_provider.api.jobs import ACTIVITY
from carto_provider.errors import CartoAPIError, ConfigurationError
from carto_provider.hooks.activity import CartoActivityHook
from carto_provider.operators.activity import CartoActivityDataOperator
from carto_provider.testing.routes.activity import activity_api
from tests.carto_jobs_support import JOB_SECONDS, PROJECT, rows

TABLE = f"{PROJECT}.shared.activity"
DAY = dt.date(2026, 11, 1)


@pytest.fixture
def carto(fast_carto):
    activity_api(fast_carto.state).settings.duration = JOB_SECONDS
    return fast_carto


def operator(**kwargs) -> CartoActivityDataOperator:
    return CartoActivityDataOperator(
        task_id="activity",
        from_date="2026-11-01",
        to_date="2026-11-03",
        destination=TABLE,
        poll_interval=0.1,
        **kwargs,
    )


def test_a_polled_export_lands_in_the_table(carto):
    result = operator(deferrable=False).execute({})
    assert result["status"] == "Success" and result["files"] == 1 and result["rows_imported"] == 15
    assert result["destination"] == TABLE
    assert "Signature" not in json.dumps(result)
    found = rows(carto, f"SELECT COUNT(*) AS n, MIN(ts) AS first FROM `{TABLE}`")
    assert found[0]["n"] == 15
    assert carto.calls("POST /activity-data-jobs") == 1 and carto.calls("POST /v3/activity-data-jobs") == 0


def test_a_deferred_export_resumes_and_imports(carto):
    op = operator(deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    trigger = deferred.value.trigger
    assert trigger.kind == "activity data job"
    event = asyncio.run(anext(trigger.run()))
    assert event.payload["status"] == "success"
    assert "Signature" not in json.dumps(event.payload)  # signed URLs never in the trigger event
    assert op.execute_complete({}, event.payload)["rows_imported"] == 15


def test_status_words_are_read_case_insensitively_and_cancel_works(carto):
    activity_api(carto.state).settings.duration = 30
    hook = CartoActivityHook()
    job = hook.create_activity_export(DAY, DAY)
    assert job.status == "Running" or job.status == "Pending"
    assert not job.done
    cancelled = hook.cancel(ACTIVITY, job.job_id)
    assert cancelled.status == "Cancelled" and cancelled.outcome == "cancelled"
    # The emulator refuses to cancel a finished export (400, as CARTO's Activity Data API is said
    # to); the hook reads the job instead and reports how it ended.
    calls = carto.calls(f"GET /activity-data-jobs/{job.job_id}")
    again = hook.cancel(ACTIVITY, job.job_id)
    assert again.outcome == "cancelled" and again.status == "Cancelled"
    assert carto.calls(f"GET /activity-data-jobs/{job.job_id}") == calls + 1


def test_api_access_tokens_are_refused(carto, monkeypatch):
    token = carto.issue_api_token()
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_AAT", json.dumps(carto.api_token_connection(token)))
    with pytest.raises(ConfigurationError, match="OAuth access token of an Admin"):
        CartoActivityHook("carto_aat").create_activity_export(DAY, DAY)
    assert carto.calls("POST /activity-data-jobs") == 0
    with pytest.raises(CartoAPIError) as info:  # and the emulator refuses such tokens there too
        CartoActivityHook("carto_aat").get(ACTIVITY, "activity_x")
    assert info.value.status == 403


def test_ranges_and_replies_are_checked():
    assert activity_body(DAY, DAY + dt.timedelta(days=59)) == {
        "startDate": "2026-11-01",
        "endDate": "2026-12-30",
        "format": "csv",
        "category": "activity",
    }
    with pytest.raises(ValueError, match="under 60 days"):
        activity_body(DAY, DAY + dt.timedelta(days=60))
    with pytest.raises(ValueError, match="before it starts"):
        activity_body(DAY, DAY - dt.timedelta(days=1))
    assert download_urls({"result": {"downloadUrls": [{"url": "https://s3/x.csv?sig"}]}}) == [
        "https://s3/x.csv?sig"
    ]
    assert download_urls({"urls": ["ftp://nope"]}) == []
