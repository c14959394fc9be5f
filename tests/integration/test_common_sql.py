"""common.sql on CARTO in real DAG runs (dag.test on SQLite) against the emulator: the example DAG
``carto_common_sql`` passes on good data, and each SQL check operator fails with common.sql's message
on bad data."""

from __future__ import annotations

import logging

from tests.carto_jobs_support import rows, run_dag, state_name, task_states, xcom


def plain(value):
    """An XCom value with Airflow 3's serialised tuples (``{"__data__": [...]}``) as lists."""
    if isinstance(value, dict) and "__data__" in value:
        return plain(value["__data__"])
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


CHECKS = ("check_columns", "check_table", "check_count", "check_heaviest")


def _run(example_dag, **conf):
    dag = example_dag("carto_common_sql")
    return dag.test(run_conf=conf) if conf else run_dag(dag)


def test_common_sql_operators_pass_on_good_data(airflow_db, fast_carto, example_dag):
    run = _run(example_dag)
    states = task_states(run)
    assert state_name(run.state) == "success", states
    assert set(states.values()) == {"success"}
    assert plain(xcom(run, "heavy_deliveries")) == [[2, "Madrid"], [4, "Sevilla"]]
    assert xcom(run, "summarise") == {"Madrid": 14.5, "Sevilla": 30.0, "Valencia": 0.8}
    assert rows(fast_carto, "SELECT COUNT(*) AS n FROM shared.airflow_example_deliveries") == [{"n": 4}]


def test_each_check_fails_with_common_sqls_message_on_bad_data(
    airflow_db, fast_carto, example_dag, caplog, capfd
):
    caplog.set_level(logging.INFO)
    run = _run(example_dag, bad_rows=True)
    states = task_states(run)
    assert state_name(run.state) == "failed"
    assert {task: states[task] for task in CHECKS} == dict.fromkeys(CHECKS, "failed")
    assert states["load"] == states["heavy_deliveries"] == states["wait_for_madrid"] == "success"
    assert states["summarise"] == "upstream_failed"
    out, err = capfd.readouterr()
    text = out + err + caplog.text
    # common.sql's own failure messages, one per check operator.
    for expected in (
        "Test failed.\nResults:\n",  # SQLColumnCheckOperator
        "('delivery_id', 'null_check', 1.0)",
        "Results:\n[('weights_in_range', 0)]",  # SQLTableCheckOperator
        "Test failed.\nPass value:4.0\nTolerance:None",  # SQLValueCheckOperator
        "Results:\n(6,)",
        'Threshold Check: "check_heaviest" failed.',  # SQLThresholdCheckOperator
        "Result: 250.0 is not within thresholds 0.0 and 100.0",
    ):
        assert expected in text, expected
