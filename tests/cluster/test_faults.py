"""Faults injected for real into the running cluster: a worker SIGKILLed mid-job, the triggerer
restarted while tasks are deferred, CARTO's auth server down for 20 s."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.cluster.harness import WORKERS
from tests.cluster.jobs import jobs_per_task, sql_jobs_taking
from tests.cluster.services import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


def test_a_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(cluster, figures):
    api, dag_id = cluster.api, "cluster_polling_job"
    api.unpause(dag_id)
    with sql_jobs_taking(cluster.carto, 45):
        run_id = api.trigger(dag_id)
        wait_for("the job to start", lambda: jobs_per_task(cluster.carto, run_id), timeout=120)
        victim = api.task_instances(dag_id, run_id)["polled_job"]["hostname"]
        assert victim in WORKERS
        time.sleep(2)  # polling now
        cluster.services[victim].kill()  # the whole machine: worker, pool, task processes
        try:
            assert api.wait_for_runs(dag_id, [run_id], timeout=300) == {run_id: "success"}
        finally:
            cluster.restart(victim)
    tries = api.tries(dag_id, run_id, "polled_job")
    assert tries[0]["hostname"] == victim
    assert tries[-1]["state"] == "success" and tries[-1]["hostname"] != victim
    figures["killed_worker_jobs"] = dict(jobs_per_task(cluster.carto, run_id))
    assert jobs_per_task(cluster.carto, run_id) == {"polled_job": 1}


def test_triggers_resume_after_a_triggerer_restart(cluster, figures):
    api, dag_id = cluster.api, "cluster_deferred_jobs"
    api.unpause(dag_id)
    tasks = ("deferred_a", "deferred_b", "deferred_c")
    with sql_jobs_taking(cluster.carto, 25):
        run_id = api.trigger(dag_id)

        def triggers_running() -> bool:
            logs = [cluster.task_logs(dag_id, run_id, task) for task in tasks]
            return all(any(".log.trigger." in name for name in found) for found in logs)

        wait_for("the triggerer to run the three triggers", triggers_running, timeout=120)
        assert {ti["state"] for ti in api.task_instances(dag_id, run_id).values()} == {"deferred"}
        cluster.services["triggerer"].stop()
        cluster.restart("triggerer")
        assert api.wait_for_runs(dag_id, [run_id], timeout=300) == {run_id: "success"}
    for task in tasks:
        trigger_logs = [name for name in cluster.task_logs(dag_id, run_id, task) if ".log.trigger." in name]
        assert len(trigger_logs) == 2, trigger_logs  # one per triggerer job: the old, then the new
    assert jobs_per_task(cluster.carto, run_id) == dict.fromkeys(tasks, 1)
    assert cluster.carto.events("sql_job_cancelled") == 0
    assert {ti["try_number"] for ti in api.task_instances(dag_id, run_id).values()} == {1}
    figures["triggerer_restart_jobs"] = dict(jobs_per_task(cluster.carto, run_id))


def test_an_auth_outage_of_twenty_seconds_is_waited_out(cluster, figures):
    api, carto, dag_id = cluster.api, cluster.carto, "cluster_fleet"
    api.unpause(dag_id)
    cluster.cold_token_caches()
    tokens_before, attempts_before = carto.token_requests(), carto.calls("POST /oauth/token")
    outage = cluster.fail_for("POST /oauth/token", 20)
    run_ids = [api.trigger(dag_id) for _ in range(2)]
    states = api.wait_for_runs(dag_id, run_ids, timeout=300)
    outage.join()
    figures["auth_outage_token_attempts"] = carto.calls("POST /oauth/token") - attempts_before
    tries = [ti["try_number"] for run_id in run_ids for ti in api.task_instances(dag_id, run_id).values()]
    assert Counter(states.values()) == {"success": 2}
    assert tries == [1, 1, 1, 1]  # no task failed and was retried: they waited
    assert carto.token_requests() - tokens_before == 1
