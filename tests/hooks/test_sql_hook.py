"""CartoSQLHook against the emulator over loopback HTTP: queries, jobs, retries and the 401 refresh."""

from __future__ import annotations

import pytest

from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.errors import CartoAPIError, CartoJobError, CartoJobTimeout, QueryTooLargeError
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.testing.routes.sql import sql_api
from tests.carto_jobs_support import POLL_SECONDS, sql_jobs

# Shared fixtures (pytest finds fixtures among a module's attributes).


QUICK = CartoRetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)


@pytest.fixture
def hook(fast_carto) -> CartoSQLHook:
    return CartoSQLHook(at_most_once_retry=QUICK, retry_policy=QUICK)


def test_query_returns_rows_schema_and_meta(hook):
    result = hook.run_query("SELECT @word AS word, 2 * @n AS twice", query_parameters={"word": "hi", "n": 21})
    assert result.rows == [{"word": "hi", "twice": 42}]
    assert [(f["name"], f["type"]) for f in result.schema] == [("word", "STRING"), ("twice", "INT64")]
    assert result.meta["cacheHit"] is False


def test_query_with_positional_parameters(hook):
    assert hook.run_query("SELECT ? AS a, ? AS b", query_parameters=["x", 3]).rows == [{"a": "x", "b": 3}]


def test_query_beyond_max_rows_fails_clearly(hook):
    with pytest.raises(QueryTooLargeError, match=r"returned 3 rows, more than max_rows=2"):
        hook.run_query("SELECT x FROM UNNEST([1, 2, 3]) AS x", max_rows=2)


def test_query_at_the_api_row_cap_is_refused_as_possibly_incomplete(hook):
    with pytest.raises(QueryTooLargeError, match="at most 200000"):
        hook.run_query("SELECT x FROM UNNEST(GENERATE_ARRAY(1, 200001)) AS x")


def test_query_error_carries_carto_error(hook):
    with pytest.raises(CartoAPIError) as info:
        hook.run_query("SELECT nope FROM `carto-dw-ac-emulator.shared.missing`")
    assert info.value.status == 400
    assert "missing" in str(info.value)


def test_unknown_connection_is_named(hook):
    with pytest.raises(CartoAPIError, match="Connection not found: my_snowflake") as info:
        hook.submit_job("SELECT 1", connection="my_snowflake")
    assert info.value.status == 404


def test_job_runs_and_is_listed(hook, fast_carto):
    job = hook.submit_job(
        "CREATE TABLE `carto-dw-ac-emulator.shared.t` AS SELECT @v AS v", query_parameters={"v": 7}
    )
    assert not job.done and job.external_id
    done = hook.wait_for_job(job.job_id, poll_interval=POLL_SECONDS)
    assert done.outcome == "success"
    assert hook.run_query("SELECT v FROM `carto-dw-ac-emulator.shared.t`").rows == [{"v": 7}]
    assert job.job_id in [j["externalId"] for j in hook.list_jobs()]  # ps-services: CreatedJob, no jobId


def test_job_failure_surfaces_carto_error_verbatim(hook, fast_carto):
    job = hook.submit_job("SELECT * FROM `carto-dw-ac-emulator.shared.no_such_table`")
    with pytest.raises(CartoJobError) as info:
        hook.wait_for_job(job.job_id, poll_interval=POLL_SECONDS)
    emulated = next(iter(sql_jobs(fast_carto)))
    assert emulated.error and "no_such_table" in emulated.error
    # CARTO's error object {code, msg} reaches the task as "code: msg".
    assert str(info.value).endswith(f": {emulated.error_code}: {emulated.error}")
    assert info.value.job.error == f"{emulated.error_code}: {emulated.error}"


VOCABULARIES = {
    "imports API": {"pending": "pending", "running": "running", "success": "success", "failure": "failure"},
    "legacy batch API": {"pending": "pending", "running": "running", "success": "done", "failure": "failed"},
    "upper case": {"pending": "PENDING", "running": "RUNNING", "success": "DONE", "failure": "ERROR"},
    "odd words": {"pending": "Queued", "running": "in_progress", "success": "Success", "failure": "Unknown"},
}


@pytest.mark.parametrize("words", VOCABULARIES.values(), ids=VOCABULARIES.keys())
def test_status_words_are_read_case_insensitively(hook, fast_carto, words):
    sql_api(fast_carto.state).settings.status_words.update(words)
    ok = hook.submit_job("SELECT 1 AS x")
    assert hook.wait_for_job(ok.job_id, poll_interval=POLL_SECONDS).status == words["success"]
    bad = hook.submit_job("SELECT * FROM `carto-dw-ac-emulator.shared.nothing`")
    with pytest.raises(CartoJobError, match=f"failed \\(status '{words['failure']}'\\)"):
        hook.wait_for_job(bad.job_id, poll_interval=POLL_SECONDS)


@pytest.mark.parametrize("word", ["cancelled", "CANCELED"])
def test_a_cancelled_job_fails_the_wait(hook, fast_carto, word):
    sql_api(fast_carto.state).settings.status_words["cancelled"] = word
    sql_api(fast_carto.state).settings.job_duration = 30
    job = hook.submit_job("SELECT 1")
    assert hook.cancel_job(job.job_id).status == word
    with pytest.raises(CartoJobError, match="was cancelled"):
        hook.wait_for_job(job.job_id, poll_interval=POLL_SECONDS)


def test_wait_timeout_cancels_the_job(hook, fast_carto):
    sql_api(fast_carto.state).settings.job_duration = 30
    job = hook.submit_job("CREATE TABLE `carto-dw-ac-emulator.shared.late` AS SELECT 1 AS x")
    with pytest.raises(CartoJobTimeout, match="has been cancelled"):
        hook.wait_for_job(job.job_id, poll_interval=POLL_SECONDS, timeout=0.3)
    assert fast_carto.calls(f"DELETE /v3/sql/carto_dw/job/{job.job_id}") == 1
    assert fast_carto.events("sql_job_cancelled", job.job_id) == 1


def test_401_refreshes_the_token_once_and_retries_once(hook, fast_carto):
    job = hook.submit_job("SELECT 1")
    first = hook.get_access_token()
    fast_carto.revoke(first)
    assert hook.get_job(job.job_id).job_id == job.job_id
    assert fast_carto.token_requests() == 2
    assert hook.get_access_token() != first
    assert fast_carto.calls(f"GET /v3/sql/carto_dw/job/{job.job_id}") == 2  # the 401, then the retry


def test_job_creation_is_not_repeated_after_a_server_error(hook, fast_carto):
    fast_carto.add_fault("POST /v3/sql/carto_dw/job", 500, body={"error": "backend exploded"})
    with pytest.raises(CartoAPIError, match="backend exploded") as info:
        hook.submit_job("SELECT 1")
    assert info.value.status == 500
    assert fast_carto.calls("POST /v3/sql/carto_dw/job") == 1


def test_job_creation_is_repeated_when_carto_refuses_it(hook, fast_carto):
    fast_carto.add_fault("POST /v3/sql/carto_dw/job", 503, times=1)
    fast_carto.add_fault("POST /v3/sql/carto_dw/job", 429, times=1, headers={"Retry-After": "0"})
    job = hook.submit_job("SELECT 1")
    assert fast_carto.calls("POST /v3/sql/carto_dw/job") == 3
    assert [j.job_id for j in sql_jobs(fast_carto)] == [job.job_id]


def test_a_query_that_times_out_is_not_repeated(fast_carto):
    hook = CartoSQLHook(at_most_once_retry=QUICK, query_timeout=(5.0, 0.3))
    fast_carto.add_fault("POST /v3/sql/carto_dw/query", None, delay=1.5)
    with pytest.raises(CartoAPIError, match="may have acted on this POST"):
        hook.run_query("SELECT 1")
    assert fast_carto.calls("POST /v3/sql/carto_dw/query") == 1


def test_reads_are_retried_on_server_errors(hook, fast_carto):
    job = hook.submit_job("SELECT 1")
    fast_carto.add_fault(f"GET /v3/sql/carto_dw/job/{job.job_id}", 502, times=2)
    assert hook.get_job(job.job_id).job_id == job.job_id
    assert fast_carto.calls(f"GET /v3/sql/carto_dw/job/{job.job_id}") == 3
