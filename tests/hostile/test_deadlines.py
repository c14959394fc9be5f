"""Item 2: one total deadline per attempt (connect and every read), on every call; timeouts checked."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from carto_provider.api.bounded import check_timeout
from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.api.transport import AsyncTransport, Transport
from carto_provider.errors import CartoAPIError, ConfigurationError, CredentialsError
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.triggers.base import CartoJobTrigger
from tests.hostile.server import json_body, trickle

ONCE = CartoRetryPolicy(attempts=1)


def elapsed(call):
    start = time.monotonic()
    try:
        call()
    except CartoAPIError as exc:
        return time.monotonic() - start, exc
    raise AssertionError("the trickled call succeeded")


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_trickled_answer_ends_at_the_total_deadline(hostile, headers_too):
    # One byte every 0.2 s of a 200-byte answer: each read is quick, the answer takes 40 s.
    hostile.on("GET /slow", trickle(0.2, headers_too=headers_too))
    with Transport(hostile.url, policy=ONCE, timeout=(1, 2)) as transport:
        seconds, exc = elapsed(lambda: transport.request("GET", "/slow"))
    assert "timed out" in str(exc)
    assert seconds < 10  # the deadline is 3 s; without one this takes 40 s


def test_a_trickled_async_answer_ends_at_the_total_deadline(hostile):
    hostile.on("GET /slow", trickle(0.2, headers_too=True))

    async def call():
        async with AsyncTransport(hostile.url, policy=ONCE, timeout=(1, 2)) as transport:
            await transport.arequest("GET", "/slow")

    seconds, exc = elapsed(lambda: asyncio.run(call()))
    assert "timed out" in str(exc)
    assert seconds < 10


def test_a_trickled_token_answer_ends_at_the_deadline(hostile_conn):
    hostile_conn.token_answer = trickle(0.2, b'{"access_token": "x", "expires_in": 3600}' + b" " * 200)
    start = time.monotonic()
    with pytest.raises(CredentialsError, match="timed out"):
        CartoSQLHook(timeout=(1, 2), retry_policy=ONCE).get_access_token()
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0, -1, (1, float("nan")), (1, 2, 3, 4), "x"])
def test_a_timeout_that_cannot_end_is_refused_where_it_is_given(timeout):
    with pytest.raises(ConfigurationError, match="timeout"):
        check_timeout(timeout)
    with pytest.raises(ConfigurationError):
        Transport("https://api.example.com", timeout=timeout)
    with pytest.raises(ConfigurationError):
        CartoSQLHook(timeout=timeout)


def test_the_trigger_keeps_to_end_time_while_a_poll_is_in_flight(hostile_conn):
    job = {"id": "job_1", "status": "running"}
    hostile_conn.on("GET /v3/sql/carto_dw/job/job_1", trickle(0.2, json.dumps(job).encode() + b" " * 400))
    hostile_conn.on("DELETE /v3/sql/carto_dw/job/job_1", json_body({**job, "status": "cancelled"}))
    trigger = CartoJobTrigger(job_id="job_1", poll_interval=0.1, end_time=time.time() + 1)

    async def first():
        return await trigger.run().__anext__()

    start = time.monotonic()
    event = asyncio.run(first())
    assert time.monotonic() - start < 10  # the trickled status answer takes 80 s
    assert event.payload["status"] == "timeout"
    assert "had not answered" in event.payload["message"]
