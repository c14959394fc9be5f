"""Fixtures and helpers for the tests of the CARTO SQL/imports hooks, operators, sensors and triggers.

Test DAGs live in ``tests/dags/``. ``dag.test()`` (Airflow 3.3) serialises a DAG by parsing the DAG
bundle that holds its file, so :func:`test_dags_bundle` adds that folder as a second bundle next to
the ``dags-folder`` bundle of ``carto_provider/example_dags/``.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import inspect
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest

from carto_provider.testing.routes.imports import imports_api
from carto_provider.testing.routes.sql import sql_api

REPO = Path(__file__).resolve().parent.parent
TEST_DAGS = Path(__file__).resolve().parent / "dags"
PROJECT = "carto-dw-ac-emulator"
#: Fast enough for tests, slow enough that every task sees its job running at least once.
JOB_SECONDS = 0.3
POLL_SECONDS = 0.1


@pytest.fixture
def fast_carto(carto_emulator: Any, carto_connection: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator behind ``carto_default``, with short jobs and imports and quick polling."""
    sql_api(carto_emulator.state).settings.job_duration = JOB_SECONDS
    imports_api(carto_emulator.state).settings.duration = JOB_SECONDS
    imports_api(carto_emulator.state).settings.retry_after = 0.1
    monkeypatch.setenv("AIRFLOW__CARTO__POLL_INTERVAL", str(POLL_SECONDS))
    return carto_emulator


@pytest.fixture
def test_dags_bundle(monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tests/dags`` as a DAG bundle, so ``dag.test()`` can serialise the DAGs defined there."""
    bundles = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {},
        },
        {
            "name": "carto-test-dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(TEST_DAGS), "refresh_interval": 0},
        },
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    return TEST_DAGS


def load_dag(path: Path, dag_id: str) -> Any:
    """The DAG ``dag_id`` defined in the file ``path`` (a fresh import each time)."""
    spec = importlib.util.spec_from_file_location(f"carto_test_dag_{path.stem}_{os.getpid()}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for value in vars(module).values():
        if getattr(value, "dag_id", None) == dag_id and hasattr(value, "test"):
            return value
    found = [getattr(v, "dag_id", None) for v in vars(module).values() if hasattr(v, "test")]
    raise LookupError(f"{dag_id} not in {path} (found {found})")


def run_dag(dag: Any, day: dt.date | None = None) -> Any:
    """``dag.test()`` for ``day`` (Airflow 3 calls it ``logical_date``, Airflow 2 ``execution_date``)."""
    airflow_3 = "logical_date" in inspect.signature(dag.test).parameters
    if not airflow_3:
        # Airflow 2 replaces an earlier run of the same day, and deleting it needs the FAB user table
        # (``dag_run_note.user_id``) known to SQLAlchemy.
        import airflow.providers.fab.auth_manager.models  # noqa: F401
    if day is None:
        return dag.test()
    when = pendulum.datetime(day.year, day.month, day.day, tz="UTC")
    return dag.test(**{"logical_date" if airflow_3 else "execution_date": when})


def _xcom_model() -> Any:
    try:
        from airflow.models.xcom import XComModel  # Airflow 3
    except ImportError:
        from airflow.models.xcom import XCom as XComModel  # Airflow 2
    return XComModel


def _xcom_value(row: Any) -> Any:
    """A stored XCom's value (Airflow 2 deserialises it when the row is loaded)."""
    try:
        from airflow.models.xcom import XComModel  # noqa: F401 - Airflow 3
    except ImportError:
        return row.value
    return type(row).deserialize_value(row)


def state_name(value: Any) -> str:
    """``success``/``failed``... of a DagRun or TaskInstance state (enum or str)."""
    return str(getattr(value, "value", value)).lower()


def task_states(run: Any) -> dict[str, str]:
    """``{task_id: state}`` of a finished DagRun."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: state_name(ti.state) for ti in run.get_task_instances(session=session)}


def xcom(run: Any, task_id: str, key: str = "return_value") -> Any:
    """A task's XCom value from the metadata database."""
    from airflow.utils.session import create_session

    XComModel = _xcom_model()

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        assert row is not None, f"no XCom {key!r} from {task_id}"
        return _xcom_value(row)


def rows(carto: Any, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows of ``sql`` read straight from the emulator's warehouse (not through the code under test)."""
    from carto_provider.testing.warehouse import get_warehouse

    return get_warehouse(carto.state).execute(sql, params).rows


def sql_jobs(carto: Any) -> Iterator[Any]:
    """The emulator's SQL jobs, oldest first."""
    yield from reversed(sql_api(carto.state).jobs.newest_first())


def issued_tokens(carto: Any) -> list[str]:
    """Every token the emulator handed out (CARTO API and Data Warehouse)."""
    with carto.state.lock:
        return list(carto.state.tokens)


def stored_run_text(run: Any) -> str:
    """What Airflow stored about a run's tasks (rendered template fields and XComs), as one text."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    XComModel = _xcom_model()

    with create_session() as session:
        rendered = session.query(RenderedTaskInstanceFields).filter_by(dag_id=run.dag_id, run_id=run.run_id)
        xcoms = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id)
        parts = [json.dumps(r.rendered_fields, default=str) for r in rendered]
        parts += [json.dumps(_xcom_value(x), default=str) for x in xcoms]
    assert parts, "nothing stored for the run"
    return "\n".join(parts)


def assert_no_secrets(text: str, carto: Any) -> None:
    """Neither the client secret nor any issued token appears in ``text``."""
    assert carto.client_secret not in text
    for token in issued_tokens(carto):
        assert token not in text
