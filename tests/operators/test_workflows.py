"""CartoRunWorkflowOperator: the CALL CARTO's API dialog shows, run as a SQL job on the emulator."""

# ruff: noqa: S608 - the SQL is built from the test's own constants

from __future__ import annotations

import pytest

from carto_provider.api.workflows import workflow_call
from carto_provider.errors import CartoJobError
from carto_provider.operators.workflows import CartoRunWorkflowOperator
from tests.carto_jobs_support import PROJECT, rows, sql_jobs

# Shared fixtures (pytest finds fixtures among a module's attributes).


def test_the_call_is_the_one_carto_shows():
    assert (
        workflow_call(
            "proj.workflows_temp.wfproc_1a2b",
            {"number_of_clusters": 2, "buffer_radius": 500, "store_type": "Supermarket"},
        )[0]
        == "CALL `proj.workflows_temp.wfproc_1a2b`(@number_of_clusters,@buffer_radius,@store_type)"
    )
    assert workflow_call("`carto-dw-ac-1.workflows_temp_u_1.wfproc_x`")[0] == (
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


def install(hook, procedure: str, signature: str, body: str) -> None:
    hook.wait_for_job(
        hook.submit_job(f"CREATE OR REPLACE PROCEDURE `{procedure}`({signature}) BEGIN {body}; END").job_id,
        poll_interval=0.1,
    )


def test_parameters_are_bound_by_name_whatever_the_dict_order(fast_carto):
    """The dict lists the parameters in the other order: each still reaches its own argument."""
    from carto_provider.hooks.sql import CartoSQLHook

    procedure = f"{PROJECT}.workflows_temp.wfproc_order"
    install(
        CartoSQLHook(),
        procedure,
        "min_revenue FLOAT64, label STRING",
        f"CREATE OR REPLACE TABLE `{PROJECT}.shared.ordered` AS SELECT min_revenue AS m, label AS l",
    )
    CartoRunWorkflowOperator(
        task_id="wf", procedure=procedure, parameters={"label": "x", "min_revenue": 2.5}, deferrable=False
    ).execute({})
    assert rows(fast_carto, f"SELECT * FROM `{PROJECT}.shared.ordered`") == [{"m": 2.5, "l": "x"}]
    assert list(sql_jobs(fast_carto))[-1].fields["query"] == f"CALL `{procedure}`(@min_revenue,@label)"


def test_the_exact_call_from_the_api_dialog_runs_with_named_parameters(fast_carto):
    from carto_provider.hooks.sql import CartoSQLHook

    procedure = f"{PROJECT}.workflows_temp.wfproc_dialog"
    install(
        CartoSQLHook(),
        procedure,
        "a INT64, b STRING",
        f"CREATE OR REPLACE TABLE `{PROJECT}.shared.dialog` AS SELECT a AS a, b AS b",
    )
    call = f"CALL `{procedure}`(@a,@b)"
    CartoRunWorkflowOperator(
        task_id="wf", call=call, parameters={"b": "y", "a": 7}, deferrable=False
    ).execute({})
    assert rows(fast_carto, f"SELECT * FROM `{PROJECT}.shared.dialog`") == [{"a": 7, "b": "y"}]
    with pytest.raises(ValueError, match=r"uses the parameters \['a', 'b'\]; got \['a'\]"):
        CartoRunWorkflowOperator(task_id="wf", call=call, parameters={"a": 1}, deferrable=False).execute({})


@pytest.mark.parametrize(
    ("provider", "call", "query_parameters"),
    [
        ("snowflake", "CALL DB.WORKFLOWS_TEMP.WFPROC_X(label => :1, n => :2)", ["x", 3]),
        ("postgres", "CALL workflows_temp.wfproc_x(label => $1, n => $2)", ["x", 3]),
        ("databricks", "CALL main.workflows_temp.wfproc_x(label => :label, n => :n)", {"label": "x", "n": 3}),
    ],
)
def test_other_warehouses_get_named_arguments_quoted_their_way(fast_carto, provider, call, query_parameters):
    """The emulator's connections declare their provider; the CALL CARTO receives is checked as sent."""
    from carto_provider.testing.routes.sql import sql_api

    sql_api(fast_carto.state).settings.connections[f"my_{provider}"] = provider
    name = call.split("CALL ")[1].split("(")[0]
    operator = CartoRunWorkflowOperator(
        task_id="wf",
        procedure=name,
        parameters={"label": "x", "n": 3},
        connection=f"my_{provider}",
        deferrable=False,
    )
    with pytest.raises(CartoJobError):  # the emulator's warehouse speaks BigQuery only
        operator.execute({})
    (job,) = sql_jobs(fast_carto)
    assert job.fields["query"] == call
    assert job.fields["queryParameters"] == query_parameters


def test_names_that_need_quoting_are_quoted_per_warehouse():
    from carto_provider.api.workflows import quote_procedure

    assert quote_procedure("my-db.workflows_temp.wfproc_1", "snowflake") == '"my-db".workflows_temp.wfproc_1'
    assert quote_procedure("my-cat.s.p", "databricks") == "`my-cat`.s.p"
    assert quote_procedure("my-proj.d.p", "bigquery") == "`my-proj.d.p`"


def test_redshift_needs_the_exact_call(fast_carto):
    from carto_provider.testing.routes.sql import sql_api

    sql_api(fast_carto.state).settings.connections["my_redshift"] = "redshift"
    operator = CartoRunWorkflowOperator(
        task_id="wf", procedure="s.wfproc_x", parameters={"a": 1}, connection="my_redshift", deferrable=False
    )
    with pytest.raises(ValueError, match="by position only: pass the exact CALL"):
        operator.execute({})
    assert fast_carto.calls("POST /v3/sql/*/job") == 0
