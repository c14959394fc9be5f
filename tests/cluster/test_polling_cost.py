"""The daily ETL polling: the same workers restarted with ``[operators] default_deferrable = false``,
the same CARTO job lengths as test_daily_etl.py. Every wait holds a worker slot, none goes to the
triggerer; the worker-slot seconds of both runs are the figures of ``make bench-cluster``."""

from __future__ import annotations

import pytest

from tests.cluster.runs import carto_jobs_taking, run_and_count_slot_seconds
from tests.cluster.test_daily_etl import DAG_ID, JOB_SECONDS

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


def test_the_daily_etl_polling_waits_in_the_workers(cluster, figures):
    cluster.api.unpause(DAG_ID)
    cluster.reconfigure_workers(AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="false")
    try:
        with carto_jobs_taking(cluster.carto, JOB_SECONDS):
            run = run_and_count_slot_seconds(cluster, DAG_ID)
    finally:
        cluster.reconfigure_workers(AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="true")
    assert run.state == "success"
    assert run.trigger_waits == 0
    figures.update(etl_polling_slot_seconds=run.slot_seconds, etl_polling_wall=run.wall_seconds)
