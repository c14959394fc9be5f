"""carto_provider.api.transport over loopback HTTP: retries, Retry-After, the 401 refresh, redirects."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator

import pytest

from carto_provider.api.retry import CartoRetryPolicy
from carto_provider.api.transport import AsyncTransport, Transport, form_post
from carto_provider.errors import CartoAPIError
from carto_provider.hooks.api_async import CartoAPIAsyncHook
from carto_provider.hooks.sql import CartoSQLHook

QUICK = CartoRetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.02, max_retry_after=0.05)


@pytest.fixture
def emulator_token(carto_emulator, carto_connection) -> str:
    return CartoSQLHook().get_access_token()


@pytest.fixture
def redirecting_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback server whose every answer is a 307 to ``/elsewhere``; returns (url, paths seen)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.path)
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_redirects_are_never_followed(redirecting_server):
    url, seen = redirecting_server
    response = form_post(f"{url}/oauth/token", {"client_secret": "s3cret"}, policy=QUICK)
    assert response.status_code == 307
    assert seen == ["/oauth/token"]


def test_a_refused_token_is_refreshed_once_naming_it(carto_emulator, emulator_token):
    asked: list[str | None] = []

    def tokens(rejected: str | None) -> str:
        asked.append(rejected)
        return "stale-token" if rejected is None else emulator_token

    with Transport(carto_emulator.url, tokens=tokens, policy=QUICK) as transport:
        assert transport.request_json("GET", "/v3/sql/jobs") is not None
    assert asked == [None, "stale-token"]
    assert carto_emulator.calls("GET /v3/sql/jobs") == 2


def test_a_token_refused_twice_fails_with_carto_error(carto_emulator):
    transport = Transport(carto_emulator.url, tokens=lambda rejected: "bad", policy=QUICK)
    with pytest.raises(CartoAPIError, match="refused the token") as info:
        transport.request("GET", "/v3/sql/jobs")
    assert info.value.status == 401
    assert carto_emulator.calls("GET /v3/sql/jobs") == 2


def test_idempotent_calls_retry_5xx_and_at_most_once_calls_do_not(carto_emulator, emulator_token):
    transport = Transport(carto_emulator.url, tokens=lambda rejected: emulator_token, policy=QUICK)
    carto_emulator.add_fault("GET /v3/sql/jobs", 502, times=2)
    transport.request("GET", "/v3/sql/jobs")
    assert carto_emulator.calls("GET /v3/sql/jobs") == 3
    carto_emulator.add_fault("POST /v3/sql/carto_dw/job", 502, times=2, body={"error": "boom"})
    with pytest.raises(CartoAPIError, match="boom"):
        transport.request("POST", "/v3/sql/carto_dw/job", json={"query": "SELECT 1"}, at_most_once=True)
    assert carto_emulator.calls("POST /v3/sql/carto_dw/job") == 1


def test_retry_after_is_honoured_and_capped_and_the_budget_bounds_retries(carto_emulator, emulator_token):
    transport = Transport(carto_emulator.url, tokens=lambda rejected: emulator_token)
    carto_emulator.add_fault("GET /v3/sql/jobs", 429, times=1, headers={"Retry-After": "3600"})
    capped = CartoRetryPolicy(attempts=3, initial_wait=5.0, max_wait=5.0, max_retry_after=0.01)
    transport.request("GET", "/v3/sql/jobs", policy=capped)  # would take an hour uncapped
    assert carto_emulator.calls("GET /v3/sql/jobs") == 2
    carto_emulator.add_fault("GET /v3/sql/jobs", 429, times=1000)
    budget = CartoRetryPolicy(attempts=1000, initial_wait=0.05, max_wait=0.05, budget=0.3)
    with pytest.raises(CartoAPIError) as info:
        transport.request("GET", "/v3/sql/jobs", policy=budget)
    assert info.value.status == 429
    assert 2 < carto_emulator.calls("GET /v3/sql/jobs") < 30


def test_an_unreachable_api_is_reported_without_a_status():
    transport = Transport("http://127.0.0.1:9", tokens=lambda rejected: "t", policy=QUICK, timeout=0.5)
    with pytest.raises(CartoAPIError, match="could not be reached") as info:
        transport.request("GET", "/v3/sql/jobs")
    assert info.value.status is None


def test_the_async_transport_keeps_one_client_across_calls(carto_emulator, emulator_token):
    async def two_calls() -> tuple[object, object]:
        async with AsyncTransport(carto_emulator.url, tokens=lambda r: emulator_token) as transport:
            await transport.arequest("GET", "/v3/sql/jobs")
            first = transport._client
            await transport.arequest("GET", "/v3/sql/jobs")
            return first, transport._client

    first, second = asyncio.run(two_calls())
    assert first is not None and first is second


def test_the_async_hook_reads_through_one_transport(carto_emulator, carto_connection):
    job = CartoSQLHook().submit_job("SELECT 1")

    async def poll_twice() -> None:
        hook = CartoAPIAsyncHook()
        await hook.aget_job(job.job_id)
        transport = await hook.atransport()
        await hook.aget_job(job.job_id)
        assert await hook.atransport() is transport
        await hook.aclose()

    asyncio.run(poll_twice())


def test_a_shared_client_request_gives_its_slot_back_while_it_waits_to_retry(carto_emulator, emulator_token):
    """One slot: a request backing off after a 503 lets another through meanwhile, and both end
    with the slot free (none leaked, none created)."""
    from carto_provider.api import _client_pool

    async def scenario() -> tuple[list[str], int]:
        async def token(rejected: str | None) -> str:
            return emulator_token

        retrying = CartoRetryPolicy(attempts=3, initial_wait=0.5, max_wait=0.5)
        transport = AsyncTransport(carto_emulator.url, atokens=token, shared_client=True, policy=retrying)
        await transport.arequest("GET", "/v3/sql/jobs")  # builds the loop's client
        clients = _client_pool._clients[asyncio.get_running_loop()]
        ((key, shared),) = clients.items()
        one_slot = asyncio.Semaphore(1)
        clients[key] = _client_pool.SharedClient(shared.client, one_slot)
        carto_emulator.add_fault("GET /v3/sql/jobs", 503, times=1)
        ended: list[str] = []

        async def call(name: str, path: str) -> None:
            await transport.arequest("GET", path)
            ended.append(name)

        backing_off = asyncio.ensure_future(call("retried", "/v3/sql/jobs"))
        await asyncio.sleep(0.1)  # its first try has failed; it sleeps 0.5 s before the next
        await call("other", "/v3/sql/jobs")  # the fault is used up
        await backing_off
        return ended, one_slot._value

    ended, free = asyncio.run(scenario())
    assert ended == ["other", "retried"]
    assert free == 1


def test_a_turn_cancelled_while_it_queues_again_gives_back_nothing():
    from carto_provider.api._client_pool import Turn

    async def scenario() -> int:
        slots = asyncio.Semaphore(1)
        turn = Turn(slots)
        await turn.__aenter__()
        other = asyncio.ensure_future(slots.acquire())  # takes the slot while the turn sleeps
        sleeping = asyncio.ensure_future(turn.sleep(0.01))
        await asyncio.sleep(0.1)
        sleeping.cancel()  # cancelled while it waits for the slot again
        with pytest.raises(asyncio.CancelledError):
            await sleeping
        await turn.__aexit__(None, None, None)
        assert await other
        slots.release()
        return slots._value

    assert asyncio.run(scenario()) == 1
