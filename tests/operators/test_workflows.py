"""CartoRunWorkflowOperator: the CALL CARTO's API dialog shows, run as a SQL job on the emulator."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import pytest

from carto_provider.hooks.sql_api import CartoJobError
from carto_provider.operators.workflows import CartoRunWorkflowOperator, workflow_call
from tests.carto_jobs_support import PROJECT, rows, sql_jobs

# Shared fixtures (pytest finds fixtures among a module's attributes).


def test_the_call_is_the_one_carto_shows():
    assert (
        workflow_call(
            "proj.workflows_temp.wfproc_1a2b",
            {"number_of_clusters": 2, "buffer_radius": 500, "store_type": "Supermarket"},
        )
        == "CALL `proj.workflows_temp.wfproc_1a2b`(@number_of_clusters,@buffer_radius,@store_type)"
    )
    assert workflow_call("`carto-dw-ac-1.workflows_temp_u_1.wfproc_x`") == (
        "CALL `carto-dw-ac-1.workflows_temp_u_1.wfproc_x`()"
    )


@pytest.mark.parametrize(
    ("procedure", "parameters", "error"),
    [
        ("wfproc_only", {}, "Not a workflow procedure name"),
        ("p.d.x`; DROP TABLE t; --", {}, "Not a workflow procedure name"),
        ("p.d.x", {"bad name": 1}, "must be SQL identifiers"),
    ],
)
def test_bad_names_are_refused_before_anything_runs(procedure, parameters, error):
    with pytest.raises(ValueError, match=error):
        workflow_call(procedure, parameters)


def test_runs_the_procedure_with_its_parameters(fast_carto):
    from carto_provider.hooks.sql import CartoSQLHook

    procedure = f"{PROJECT}.workflows_temp.wfproc_scale"
    hook = CartoSQLHook()
    hook.wait_for_job(
        hook.submit_job(
            f"CREATE PROCEDURE `{procedure}`(factor INT64, label STRING) BEGIN "
            f"CREATE OR REPLACE TABLE `{PROJECT}.shared.scaled` AS SELECT 21 * factor AS v, label AS l; END"
        ).job_id,
        poll_interval=0.1,
    )
    operator = CartoRunWorkflowOperator(
        task_id="wf", procedure=procedure, parameters={"factor": 2, "label": "x"}, deferrable=False
    )
    ids = operator.execute({})
    assert ids["status"] == "success"
    assert rows(fast_carto, f"SELECT * FROM `{PROJECT}.shared.scaled`") == [{"v": 42, "l": "x"}]
    assert [j.fields["query"] for j in sql_jobs(fast_carto)][-1] == f"CALL `{procedure}`(@factor,@label)"


def test_a_missing_workflow_fails_with_carto_error(fast_carto):
    operator = CartoRunWorkflowOperator(
        task_id="wf", procedure=f"{PROJECT}.workflows_temp.wfproc_gone", deferrable=False
    )
    with pytest.raises(CartoJobError, match="Not found: Procedure"):
        operator.execute({})
