"""The ``carto`` asset URI scheme, the import operator's default outlet, and an import triggering the
DAG scheduled on its table (``carto_provider/example_dags/carto_assets.py``) in a real run."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from carto_provider.assets import sanitize_uri
from tests.carto_jobs_support import state_name, task_states
from tests.conftest import EXAMPLE_DAGS

AIRFLOW_3 = __import__("airflow").__version__.startswith("3")
URI = "carto://carto_dw/carto-dw-ac-emulator.shared.asset_stores"


def asset_class():
    try:
        from airflow.sdk import Asset
    except ImportError:  # Airflow 2
        from airflow.datasets import Dataset as Asset
    return Asset


def test_airflow_normalises_carto_uris_and_refuses_malformed_ones():
    Asset = asset_class()
    assert (
        Asset("carto://CARTO_DW/`carto-dw-ac-x.shared.t`/").uri == "carto://carto_dw/carto-dw-ac-x.shared.t"
    )
    for bad, message in [
        ("carto://carto_dw/shared.t", "needs its project, dataset and table"),
        ("carto:///p.d.t", "starts with the CARTO connection name"),
        ("carto://carto_dw/p.d.t?version=2", "no query or fragment"),
        ("carto://my_snowflake/a.b.c.d", "names one table"),
    ]:
        with pytest.raises(ValueError, match=message):
            sanitize_uri(urlsplit(bad))
        if AIRFLOW_3:  # Airflow 2 only warns when a provider's normaliser refuses a URI
            with pytest.raises(ValueError, match=message):
                Asset(bad)


def test_a_carto_asset_converts_to_the_openlineage_dataset():
    from carto_provider.assets import convert_asset_to_openlineage, create_asset

    dataset = convert_asset_to_openlineage(create_asset(table="carto-dw-ac-x.shared.t"), None)
    assert (dataset.namespace, dataset.name) == ("bigquery", "carto-dw-ac-x.shared.t")
    other = convert_asset_to_openlineage(create_asset(table="db.sch.t", connection="my_snowflake"), None)
    assert (other.namespace, other.name) == ("carto://my_snowflake", "db.sch.t")


def test_the_import_declares_its_destination_as_outlet_unless_templated():
    from carto_provider.operators.imports import CartoImportOperator

    op = CartoImportOperator(
        task_id="a", url="https://x/f.csv", destination="carto-dw-ac-emulator.shared.asset_stores"
    )
    assert [o.uri for o in op.outlets] == [URI]
    templated = CartoImportOperator(task_id="b", url="https://x/f.csv", destination="{{ params.d }}.t")
    assert templated.outlets == []
    mine = asset_class()("carto://carto_dw/p.d.other")
    assert CartoImportOperator(task_id="c", url="u", destination="p.d.t", outlets=[mine]).outlets == [mine]


def test_an_import_triggers_the_dag_scheduled_on_its_table(airflow_db, fast_carto, example_dag):
    from airflow.utils.session import create_session

    try:
        from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    except ImportError:  # Airflow 2
        from airflow.models.dataset import DatasetDagRunQueue as AssetDagRunQueue
        from airflow.models.dataset import DatasetEvent as AssetEvent
        from airflow.models.dataset import DatasetModel as AssetModel

    if not AIRFLOW_3:  # Airflow 2's dag.test() does not write the DAGs and their datasets to the database
        from airflow.models.dagbag import DagBag

        DagBag(
            dag_folder=str(EXAMPLE_DAGS / "carto_assets.py"),
            include_examples=False,
        ).sync_to_db()
    run = example_dag("carto_assets_import", "carto_assets").test()
    assert state_name(run.state) == "success", task_states(run)
    with create_session() as session:
        asset = session.query(AssetModel).filter_by(uri=URI).one()
        events = (
            session.query(AssetEvent)
            .filter(getattr(AssetEvent, "asset_id", getattr(AssetEvent, "dataset_id", None)) == asset.id)
            .all()
        )
        assert [e.source_task_id for e in events] == ["import_stores"]
        queued = session.query(AssetDagRunQueue).filter_by(target_dag_id="carto_assets_consumer").all()
        assert len(queued) == 1  # the scheduler creates the consumer's run from this
