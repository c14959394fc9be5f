"""The emulator's SQL API as CARTO's clients see it: raw HTTP, scripts, procedures, errors."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import json

import pytest
import requests

from carto_provider.testing.routes.sql import split_arguments, split_statements, sql_api
from tests.carto_jobs_support import POLL_SECONDS, PROJECT

# Shared fixtures (pytest finds fixtures among a module's attributes).


@pytest.fixture
def api(fast_carto):
    """``(method, path, **kw) -> response`` with a valid bearer token."""
    from carto_provider.hooks.carto import CartoAuthHook

    token = CartoAuthHook().get_access_token()

    def call(method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(method, f"{fast_carto.url}{path}", headers=headers, timeout=10, **kwargs)

    return call


def wait_done(api, job_id: str) -> dict:
    import time

    while True:
        body = api("GET", f"/v3/sql/carto_dw/job/{job_id}").json()
        if body["status"] in ("success", "failure", "cancelled"):
            return body
        time.sleep(POLL_SECONDS)


def test_get_query_takes_q_and_json_parameters(api):
    response = api(
        "GET", "/v3/sql/carto_dw/query", params={"q": "SELECT @a AS a", "queryParameters": '{"a": 5}'}
    )
    assert response.status_code == 200
    assert response.json()["rows"] == [{"a": 5}]


def test_errors_are_carto_shaped(api, fast_carto):
    bad = api("POST", "/v3/sql/carto_dw/query", json={"q": "SELEC 1"})
    assert bad.status_code == 400 and bad.json()["status"] == 400 and "Syntax error" in bad.json()["error"]
    assert api("POST", "/v3/sql/carto_dw/query", json={}).json() == {
        "error": "Missing query: set q",
        "status": 400,
    }
    assert api("GET", "/v3/sql/carto_dw/job/job_nope").status_code == 404
    anonymous = requests.post(f"{fast_carto.url}/v3/sql/carto_dw/job", json={"query": "SELECT 1"}, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "Token not defined"


def test_a_job_takes_its_time_and_reports_ids_and_times(api):
    """The shapes of @carto/ps-services' types: CreatedJob (no jobId, no status), CartoJob, a bare list."""
    created = api("POST", "/v3/sql/carto_dw/job", json={"query": "SELECT 1", "metadata": {"app": "t"}}).json()
    assert set(created) == {"externalId", "accountId", "userId", "connectionId", "metadata", "createdAt"}
    assert created["externalId"].startswith("job_") and created["metadata"] == {"app": "t"}
    running = api("GET", f"/v3/sql/carto_dw/job/{created['externalId']}").json()
    assert running["status"] in ("pending", "running") and running["error"] == {}
    done = wait_done(api, created["externalId"])
    assert done["status"] == "success" and done["error"] == {} and done["createdAt"] <= done["updatedAt"]
    assert done["jobId"] == created["externalId"] and done["query"] == "SELECT 1"
    listed = api("GET", "/v3/sql/jobs", params={"created_since": "2022-10-01T00:00:00.000Z"}).json()
    assert [j["externalId"] for j in listed] == [created["externalId"]] and "status" not in listed[0]
    assert api("GET", "/v3/sql/jobs", params={"created_since": "2999-01-01T00:00:00Z"}).json() == []
    assert api("GET", "/v3/sql/jobs", params={"metadata": '{"app": "other"}'}).json() == []


def test_the_worst_case_vocabulary_reports_a_failure_as_done_with_an_error(api, fast_carto):
    from carto_provider.testing.routes.background import WORST_CASE_WORDS

    sql_api(fast_carto.state).settings.status_words = dict(WORST_CASE_WORDS)
    created = api("POST", "/v3/sql/carto_dw/job", json={"query": f"SELECT * FROM `{PROJECT}.shared.nope`"})
    done = wait_for_error_or_done(api, created.json()["externalId"])
    assert done["status"] == "done"
    assert done["error"]["code"] == "notFound" and "nope" in done["error"]["msg"]


def wait_for_error_or_done(api, job_id: str) -> dict:
    import time

    while True:
        body = api("GET", f"/v3/sql/carto_dw/job/{job_id}").json()
        if body["status"] == "done":
            return body
        time.sleep(POLL_SECONDS)


def test_procedures_run_their_body_with_bound_arguments(api, fast_carto):
    script = f"""
    CREATE OR REPLACE PROCEDURE `{PROJECT}.workflows_temp.wfproc_demo`(n INT64, label STRING)
    BEGIN
      CREATE OR REPLACE TABLE `{PROJECT}.shared.demo` AS
      SELECT x, label AS tag, CASE WHEN x > n THEN 'big; really' ELSE 'small' END AS size
      FROM UNNEST(GENERATE_ARRAY(1, 4)) AS x;
    END;
    CALL `{PROJECT}.workflows_temp.wfproc_demo`(@n, "it's");
    """
    job = api("POST", "/v3/sql/carto_dw/job", json={"query": script, "queryParameters": {"n": 2}}).json()
    assert wait_done(api, job["externalId"])["status"] == "success"
    got = api(
        "POST", "/v3/sql/carto_dw/query", json={"q": f"SELECT * FROM `{PROJECT}.shared.demo` ORDER BY x"}
    )
    assert [(r["x"], r["tag"], r["size"]) for r in got.json()["rows"]] == [
        (1, "it's", "small"),
        (2, "it's", "small"),
        (3, "it's", "big; really"),
        (4, "it's", "big; really"),
    ]
    assert f"{PROJECT}.workflows_temp.wfproc_demo" in sql_api(fast_carto.state).procedures


@pytest.mark.parametrize(
    ("query", "error"),
    [
        (f"CALL `{PROJECT}.workflows_temp.wfproc_missing`(1)", "Not found: Procedure"),
        (
            f"CREATE PROCEDURE `{PROJECT}.w.p`(a INT64) BEGIN SELECT a; END; CALL `{PROJECT}.w.p`(1, 2)",
            "takes 1 argument(s) but 2 were given",
        ),
    ],
)
def test_procedure_errors_fail_the_job(api, query, error):
    job = api("POST", "/v3/sql/carto_dw/job", json={"query": query}).json()
    done = wait_done(api, job["externalId"])
    assert done["status"] == "failure" and error in done["error"]["msg"]


def test_statement_splitting_respects_strings_comments_and_blocks():
    sql = "SELECT ';' AS a; -- a comment; with a semicolon\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END;\nSELECT 3"
    assert split_statements(sql) == [
        "SELECT ';' AS a",
        "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
        "SELECT 3",
    ]
    assert split_arguments("@a, 'x,y', ARRAY[1, 2], f(3, 4)") == ["@a", "'x,y'", "ARRAY[1, 2]", "f(3, 4)"]
    assert split_arguments("") == []


def test_query_rows_are_capped_like_carto(api, fast_carto):
    sql_api(fast_carto.state).settings.max_rows = 3
    body = api(
        "POST", "/v3/sql/carto_dw/query", json={"q": "SELECT x FROM UNNEST(GENERATE_ARRAY(1, 10)) AS x"}
    )
    assert len(body.json()["rows"]) == 3
    assert json.loads(body.text)["schema"] == [{"name": "x", "type": "INT64"}]
