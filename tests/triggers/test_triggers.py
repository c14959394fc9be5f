"""CARTO triggers and the async hook against the emulator: serialise/run round trips, kill, timeouts."""

from __future__ import annotations

import asyncio
import importlib
import json
import time

import pytest

from carto_provider.api.jobs import job_from_event
from carto_provider.errors import (
    CartoAPIError,
    CartoError,
    CartoJobError,
    CartoJobTimeout,
    ResponseTooLargeError,
)
from carto_provider.hooks.api_async import CartoAPIAsyncHook
from carto_provider.hooks.imports import CartoImportsHook
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.testing.routes.imports import imports_api
from carto_provider.testing.routes.sql import sql_api
from carto_provider.triggers.base import CartoJobTrigger
from tests.carto_jobs_support import POLL_SECONDS, PROJECT, assert_no_secrets

# Shared fixtures (pytest finds fixtures among a module's attributes).


def rebuilt(trigger):
    """The trigger as the triggerer rebuilds it from the database: class path + JSON kwargs."""
    classpath, kwargs = trigger.serialize()
    stored = json.loads(json.dumps(kwargs))
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**stored)


async def first_event(trigger):
    return await anext(trigger.run())


def test_serialisation_round_trips_without_secrets(fast_carto):
    sql = CartoJobTrigger(
        job_id="job_1", connection="carto_dw", carto_conn_id="carto_default", poll_interval=2.5, end_time=1e9
    )
    again = rebuilt(sql)
    assert type(again) is CartoJobTrigger
    assert again.serialize() == sql.serialize()
    assert sql.serialize()[0] == "carto_provider.triggers.base.CartoJobTrigger"
    imports = CartoJobTrigger(job_id="import_1", kind="import", cancel_on_kill=False)
    assert rebuilt(imports).serialize() == imports.serialize()
    CartoSQLHook().get_access_token()
    assert_no_secrets(json.dumps([sql.serialize(), imports.serialize()]), fast_carto)


def test_a_job_trigger_fires_once_the_job_succeeds(fast_carto):
    job = CartoSQLHook().submit_job("SELECT 1")
    event = asyncio.run(first_event(rebuilt(CartoJobTrigger(job_id=job.job_id, poll_interval=POLL_SECONDS))))
    assert event.payload["status"] == "success"
    assert job_from_event(event.payload).job_id == job.job_id
    assert fast_carto.calls(f"GET /v3/sql/carto_dw/job/{job.job_id}") >= 2  # it saw the job running


def test_a_failed_job_reaches_the_task_with_carto_error(fast_carto):
    job = CartoSQLHook().submit_job("SELECT * FROM `carto-dw-ac-emulator.shared.absent`")
    event = asyncio.run(first_event(CartoJobTrigger(job_id=job.job_id, poll_interval=POLL_SECONDS)))
    assert event.payload["status"] == "failed"
    emulated = sql_api(fast_carto.state).jobs[job.job_id]
    assert emulated.error and event.payload["job"]["error"] == f"{emulated.error_code}: {emulated.error}"
    with pytest.raises(CartoJobError, match="absent"):
        job_from_event(event.payload)


def test_an_import_trigger_fires_with_the_import_result(fast_carto):
    job = CartoImportsHook().create_import(
        f"{fast_carto.url}/emulator/files/stores.geojson", f"{PROJECT}.shared.stores"
    )
    trigger = CartoJobTrigger(job_id=job.job_id, kind="import", poll_interval=POLL_SECONDS)
    event = asyncio.run(first_event(rebuilt(trigger)))
    assert event.payload["status"] == "success"
    assert event.payload["job"]["body"]["rowsImported"] == 5
    assert "url" not in event.payload["job"]["body"]


async def kill_while_running(trigger, carto, path: str) -> None:
    """Start the trigger, wait until it has polled the running job, then kill it as Airflow 3.3 does."""
    task = asyncio.create_task(first_event(trigger))
    while carto.calls(path) == 0:
        await asyncio.sleep(0.02)
    await trigger.on_kill()
    task.cancel()
    try:
        event = await task
    except asyncio.CancelledError:
        return
    # On a loaded machine the trigger may poll the job on_kill just cancelled before the task is
    # cancelled: its one event must then report that cancellation, never a success.
    assert event.payload["status"] == "cancelled", event.payload


@pytest.mark.parametrize("cancel_on_kill", [True, False])
def test_killing_a_deferred_task_cancels_the_remote_job(fast_carto, cancel_on_kill):
    sql_api(fast_carto.state).settings.job_duration = 30
    job = CartoSQLHook().submit_job(f"CREATE TABLE `{PROJECT}.shared.killed` AS SELECT 1 AS x")
    trigger = CartoJobTrigger(job_id=job.job_id, poll_interval=POLL_SECONDS, cancel_on_kill=cancel_on_kill)
    asyncio.run(kill_while_running(trigger, fast_carto, f"GET /v3/sql/carto_dw/job/{job.job_id}"))
    assert fast_carto.calls(f"DELETE /v3/sql/carto_dw/job/{job.job_id}") == int(cancel_on_kill)
    assert sql_api(fast_carto.state).jobs[job.job_id].state == ("cancelled" if cancel_on_kill else "running")


def test_killing_a_deferred_import_cancels_it(fast_carto):
    imports_api(fast_carto.state).settings.duration = 30
    job = CartoImportsHook().create_import(
        f"{fast_carto.url}/emulator/files/stores.geojson", f"{PROJECT}.shared.s"
    )
    trigger = CartoJobTrigger(job_id=job.job_id, kind="import", poll_interval=POLL_SECONDS)
    asyncio.run(kill_while_running(trigger, fast_carto, f"GET /v3/imports/{job.job_id}"))
    assert fast_carto.calls(f"POST /v3/imports/{job.job_id}/cancel") == 1
    assert fast_carto.events("import_cancelled", job.job_id) == 1


def test_the_trigger_gives_up_at_end_time_and_cancels(fast_carto):
    sql_api(fast_carto.state).settings.job_duration = 30
    job = CartoSQLHook().submit_job("SELECT 1")
    trigger = CartoJobTrigger(job_id=job.job_id, poll_interval=POLL_SECONDS, end_time=time.time() + 0.3)
    event = asyncio.run(first_event(trigger))
    assert event.payload["status"] == "timeout"
    assert "has been cancelled" in event.payload["message"]
    assert fast_carto.events("sql_job_cancelled", job.job_id) == 1
    with pytest.raises(CartoJobTimeout):
        job_from_event(event.payload)


def test_an_unknown_job_gives_an_error_event(fast_carto):
    event = asyncio.run(first_event(CartoJobTrigger(job_id="job_nope", poll_interval=POLL_SECONDS)))
    assert event.payload["status"] == "error"
    assert "Job not found: job_nope" in event.payload["message"]
    with pytest.raises(CartoError, match="Lost track of CARTO job 'job_nope'"):
        job_from_event(event.payload)


def test_async_hook_refreshes_a_refused_token_once(fast_carto):
    job = CartoSQLHook().submit_job("SELECT 1")
    fast_carto.revoke(CartoSQLHook().get_access_token())

    async def read():
        return await CartoAPIAsyncHook().aget_job(job.job_id)

    assert asyncio.run(read()).job_id == job.job_id
    assert fast_carto.token_requests() == 2
    assert fast_carto.calls(f"GET /v3/sql/carto_dw/job/{job.job_id}") == 2


def test_async_hook_retries_transient_failures_and_reports_the_rest(fast_carto):
    from carto_provider.api.retry import CartoRetryPolicy

    job = CartoSQLHook().submit_job("SELECT 1")
    path = f"GET /v3/sql/carto_dw/job/{job.job_id}"
    fast_carto.add_fault(path, 503, times=2, headers={"Retry-After": "0"})
    hook = CartoAPIAsyncHook(retry_policy=CartoRetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02))
    assert asyncio.run(hook.aget_job(job.job_id)).job_id == job.job_id
    assert fast_carto.calls(path) == 3
    fast_carto.add_fault(path, 403, body={"error": "Forbidden: not your job"})
    with pytest.raises(CartoAPIError, match="Forbidden: not your job") as info:
        asyncio.run(hook.aget_job(job.job_id))
    assert info.value.status == 403


def test_the_triggers_of_one_loop_share_one_lookup_one_client_and_one_token(fast_carto, monkeypatch):
    """As Airflow's triggerer runs them: many triggers in one event loop (issue 23)."""
    jobs = [CartoSQLHook().submit_job("SELECT 1") for _ in range(3)]
    lookups: list[str] = []
    real_lookup = CartoAPIAsyncHook._aconnection

    async def counting_lookup(self):
        lookups.append(self.carto_conn_id)
        return await real_lookup(self)

    monkeypatch.setattr(CartoAPIAsyncHook, "_aconnection", counting_lookup)
    tokens_before = fast_carto.token_requests()

    async def many() -> tuple[list, set]:
        triggers = [
            rebuilt(CartoJobTrigger(job_id=jobs[i % 3].job_id, poll_interval=POLL_SECONDS)) for i in range(30)
        ]
        events = await asyncio.gather(*(first_event(t) for t in triggers))
        transport = await CartoAPIAsyncHook().atransport()
        hooks_transports = {id(await CartoAPIAsyncHook().atransport()) for _ in range(3)}
        assert hooks_transports == {id(transport)} and transport.shared_client
        other = (await CartoAPIAsyncHook().aget_auth()).api_async_transport()
        return events, {id(await t._http()) for t in (transport, other)}

    events, clients = asyncio.run(many())
    assert {event.payload["status"] for event in events} == {"success"}
    assert lookups == ["carto_default"] and len(clients) == 1
    assert fast_carto.token_requests() == tokens_before  # the cached token, fetched once per loop
    assert sum(fast_carto.calls(f"GET /v3/sql/carto_dw/job/{job.job_id}") for job in jobs) >= 30


def test_shared_transports_keep_each_hooks_byte_budget_and_deadline(fast_carto):
    """Sharing the loop's HTTP client shares no limit: each hook's transport is its CartoAuth's."""
    job = CartoSQLHook().submit_job("SELECT 1")

    async def both() -> tuple[Exception, str, set]:
        small = CartoAPIAsyncHook(max_response_bytes=64, timeout=(2, 3, 4))
        default = CartoAPIAsyncHook()
        with pytest.raises(ResponseTooLargeError, match="more than 64 bytes") as refused:
            await small.aget_job(job.job_id)
        seen = await default.aget_job(job.job_id)
        small_t, default_t = await small.atransport(), await default.atransport()
        assert (small_t.max_body, small_t._timeouts[2], default_t._timeouts) == (64, 4.0, (10.0, 30.0, 40.0))
        return refused.value, seen.job_id, {id((await t._http())[0]) for t in (small_t, default_t)}

    refused, seen, clients = asyncio.run(both())
    assert seen == job.job_id and "Bearer" not in str(refused)
    assert len(clients) == 2  # other timeouts: another client (the client carries the default timeout)


def test_the_shared_client_queues_requests_beyond_its_slots_outside_httpcore(fast_carto):
    """100 slow polls at once: at most MAX_CONNECTIONS reach httpcore's pool (whose bookkeeping is
    quadratic in what it holds); the rest wait on the loop's semaphore, in order, and all succeed."""
    from carto_provider.api._client_pool import MAX_CONNECTIONS

    job = CartoSQLHook().submit_job("SELECT 1")
    fast_carto.set_latency(f"GET /v3/sql/carto_dw/job/{job.job_id}", 0.3)

    async def polls() -> tuple[list, int]:
        hook = CartoAPIAsyncHook()
        client, *_ = await (await hook.atransport())._http()
        pool = client._transport._pool
        peak = 0
        tasks = [asyncio.ensure_future(hook.aget_job(job.job_id)) for _ in range(100)]
        while not all(t.done() for t in tasks):
            peak = max(peak, len(pool._requests))
            await asyncio.sleep(0.005)
        return [t.result() for t in tasks], peak

    try:
        results, peak = asyncio.run(polls())
    finally:
        fast_carto.set_latency(f"GET /v3/sql/carto_dw/job/{job.job_id}", 0)
    assert {r.job_id for r in results} == {job.job_id}
    assert 0 < peak <= MAX_CONNECTIONS
