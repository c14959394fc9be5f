"""Item 3: server text is sanitised (printable, capped, secrets redacted) wherever it lands; bounded
JSON depth; an unexpected exception in a trigger becomes an ``error`` event."""

from __future__ import annotations

import asyncio
import time

import pytest

from carto_provider.api.transport import Transport
from carto_provider.api.untrusted import MAX_MESSAGE, sanitize
from carto_provider.auth.login.oauth import LoginInfo, LoginToken, OAuthClient
from carto_provider.cli import _describe_login
from carto_provider.errors import CartoAPIError
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.triggers.base import CartoJobTrigger
from tests.hostile.server import deep_json, json_body

FORGED = "boom\n2026-12-03T08:00:00Z [info] forged log line \x1b[31mred\x1b[0m \u202eevil"


def echo_token(status: int = 400, pad: int = 0):
    """An error answer quoting the request's bearer token, with escape codes and newlines."""

    def answer(handler):
        token = handler.headers.get("Authorization", "").removeprefix("Bearer ")
        json_body({"error": f"{FORGED} token={token} " + "x" * pad}, status)(handler)

    return answer


def clean(text: str) -> None:
    assert "\n" not in text and "\x1b" not in text and "\u202e" not in text
    assert "hostile-token" not in text


def test_an_api_error_is_printable_capped_and_has_the_token_redacted(hostile_conn):
    hostile_conn.on("POST /v3/sql/carto_dw/query", echo_token(pad=500_000))
    with pytest.raises(CartoAPIError) as caught:
        CartoSQLHook().run_query("SELECT 1")
    clean(str(caught.value))
    clean(caught.value.error or "")
    assert "token=***" in str(caught.value)
    assert len(str(caught.value)) < 1000


def test_a_job_error_is_sanitised_and_capped(hostile_conn):
    error = {"code": "E1", "msg": FORGED + "y" * 100_000}
    hostile_conn.on(
        "GET /v3/sql/carto_dw/job/job_1", json_body({"jobId": "job_1", "status": "failed", "error": error})
    )
    job = CartoSQLHook().get_job("job_1")
    clean(job.error)
    assert len(job.error) <= MAX_MESSAGE + 3


def test_deep_json_is_an_api_error_not_a_recursion_error(hostile):
    hostile.on("GET /deep", deep_json())
    with Transport(hostile.url) as transport, pytest.raises(CartoAPIError, match="nested too deeply"):
        transport.request_json("GET", "/deep")


def test_deep_json_in_a_status_answer_gives_the_trigger_an_error_event(hostile_conn):
    hostile_conn.on("GET /v3/sql/carto_dw/job/job_1", deep_json())
    event = asyncio.run(CartoJobTrigger(job_id="job_1", end_time=time.time() + 30).run().__anext__())
    assert event.payload["status"] == "error"
    assert "nested too deeply" in event.payload["message"]


def test_an_unexpected_exception_in_a_trigger_is_an_error_event(hostile_conn):
    trigger = CartoJobTrigger(job_id="job_1", carto_conn_id="no_such_connection", end_time=time.time() + 30)
    event = asyncio.run(trigger.run().__anext__())
    assert event.payload["status"] == "error"
    assert "The trigger failed" in event.payload["message"]


def test_cli_status_prints_no_escape_codes_from_the_accounts_service():
    login = LoginInfo(api_base_url="https://api.example.com\x1b]8;;evil\x07", user="a@b.c\x1b[2J\nroot# ")
    token = LoginToken("t" * 40, time.time() + 3600, time.time(), login=login)
    text = _describe_login(token, OAuthClient(auth_url="https://auth.carto.com"), __file__)
    assert "\x1b" not in text and "\x07" not in text and "root# " in text.splitlines()[0]


def test_sanitize_redacts_before_it_cuts():
    secret = "s3cr3t-value-0123456789"
    text = sanitize("a" * 1990 + secret, [secret])
    assert secret[:8] not in text
