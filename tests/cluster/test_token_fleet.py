"""20 concurrent runs across both Celery workers share one CARTO token through Redis."""

from __future__ import annotations

import time
from collections import Counter

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

DAG_ID = "cluster_fleet"
RUNS = 20
TASKS_PER_RUN = 2


def test_twenty_concurrent_runs_make_one_token_request(cluster, figures):
    api, carto = cluster.api, cluster.carto
    api.unpause(DAG_ID)
    cluster.cold_token_caches()
    tokens_before, calls_before = carto.token_requests(), carto.calls("GET /v3/connections")

    started = time.monotonic()
    run_ids = [api.trigger(DAG_ID) for _ in range(RUNS)]
    states = api.wait_for_runs(DAG_ID, run_ids, timeout=420)
    wall = time.monotonic() - started

    assert Counter(states.values()) == {"success": RUNS}
    task_instances = [ti for run_id in run_ids for ti in api.task_instances(DAG_ID, run_id).values()]
    hosts = Counter(ti["hostname"] for ti in task_instances)
    assert set(hosts) == {"worker-1", "worker-2"}, hosts  # both machines worked
    assert carto.calls("GET /v3/connections") - calls_before == RUNS * TASKS_PER_RUN
    token_requests = carto.token_requests() - tokens_before
    assert token_requests == 1  # each worker has its own HOME: only Redis can share the token
    figures.update(
        fleet_runs=RUNS,
        fleet_task_runs=len(task_instances),
        fleet_seconds=wall,
        fleet_runs_per_minute=RUNS / wall * 60,
        fleet_token_requests=token_requests,
        fleet_tasks_per_worker=dict(sorted(hosts.items())),
    )
