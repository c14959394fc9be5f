"""OpenLineage end to end: ``airflow dags test carto_lineage`` with the file transport writes COMPLETE
events whose inputs and outputs name the right datasets, with CARTO's job ids."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import airflow_cli

pytest.importorskip("airflow.providers.openlineage")

PROJECT = "carto-dw-ac-emulator"


def table(name: str) -> tuple[str, str]:
    return ("bigquery", f"{PROJECT}.shared.{name}")


def complete_events(path: Path) -> dict[str, dict]:
    """The last COMPLETE event of each task, by task id."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    done = {}
    for event in events:
        if event.get("eventType") == "COMPLETE" and "." in event["job"]["name"]:
            done[event["job"]["name"].split(".", 1)[1]] = event
    return done


def datasets(event: dict, kind: str) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in event.get(kind, [])}


def test_lineage_dag_emits_inputs_outputs_and_job_ids(airflow_db, fast_carto, tmp_path):
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "carto-tests",
        "AIRFLOW__CARTO__POLL_INTERVAL": "0.1",
    }
    done = subprocess.run(
        [airflow_cli(), "dags", "test", "carto_lineage"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = complete_events(events_file)
    assert set(events) >= {"import_stores", "summarise", "read_count", "audit"}, sorted(events)

    imported = events["import_stores"]
    assert datasets(imported, "inputs") == {(fast_carto.url, "/emulator/files/stores.geojson")}
    assert datasets(imported, "outputs") == {table("lineage_stores")}

    summarise = events["summarise"]
    assert datasets(summarise, "inputs") == {table("lineage_stores")}
    assert datasets(summarise, "outputs") == {table("lineage_store_count")}
    assert "CREATE OR REPLACE TABLE" in summarise["job"]["facets"]["sql"]["query"]

    assert datasets(events["read_count"], "inputs") == {table("lineage_store_count")}
    assert datasets(events["audit"], "inputs") == {table("lineage_store_count")}
    assert datasets(events["audit"], "outputs") == {table("lineage_audit")}

    # CARTO's job ids: the import's and the SQL jobs' (the common.sql statements ran as jobs too).
    for task in ("import_stores", "summarise", "audit"):
        facet = events[task]["run"]["facets"]["externalQuery"]
        assert facet["source"] == "carto" and facet["externalQueryId"].startswith(("job", "imp")), task
    assert "externalQuery" not in events["read_count"]["run"]["facets"]  # /query has no job
    assert fast_carto.client_secret not in events_file.read_text()


# ---------------------------------------------------------------------------------------------- the pieces


def test_sql_lineage_names_tables_per_the_naming_spec():
    from carto_provider.lineage import sql_lineage

    asked = []
    lineage = sql_lineage(
        "INSERT INTO shared.out SELECT * FROM `other-project.raw.src` JOIN shared.dim USING (id)",
        connection="carto_dw",
        project=lambda: asked.append(1) or PROJECT,
        job_id="job_1",
    )
    assert {(d.namespace, d.name) for d in lineage.inputs} == {
        ("bigquery", "other-project.raw.src"),
        table("dim"),
    }
    assert {(d.namespace, d.name) for d in lineage.outputs} == {table("out")}
    assert lineage.run_facets["externalQuery"].externalQueryId == "job_1"
    assert asked == [1]  # the project was needed (dataset.table names) and asked for once


def test_a_workflow_call_reports_its_sql_and_job_id_without_guessing_tables():
    from carto_provider.lineage import sql_lineage
    from carto_provider.operators.workflows import CartoRunWorkflowOperator

    op = CartoRunWorkflowOperator(
        task_id="flow", procedure=f"{PROJECT}.workflows_temp.wfproc_x", parameters={"a": 1}
    )
    lineage = sql_lineage(op.job_sql()[0], connection="carto_dw", project=lambda: PROJECT, job_id="job_9")
    assert lineage.inputs == [] and lineage.outputs == []
    assert "CALL" in lineage.job_facets["sql"].query
    assert lineage.run_facets["externalQuery"].externalQueryId == "job_9"


def test_import_lineage_drops_the_signed_query_string_and_other_connections_get_a_carto_namespace():
    from carto_provider.lineage import import_lineage

    lineage = import_lineage(
        "https://storage.example.com/bucket/stores.csv?X-Goog-Signature=secret",
        "db.schema.stores",
        connection="my_snowflake",
        project=lambda: pytest.fail("no project for a non-DW connection"),
        api_base_url="https://gcp-us-east1.api.carto.com",
        job_id=None,
    )
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("https://storage.example.com", "/bucket/stores.csv")
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("carto://my_snowflake", "db.schema.stores")]
    assert "externalQuery" not in lineage.run_facets
