"""OpenLineage for CARTO: datasets of the SQL run through CARTO, of imports, and CARTO's job ids.

Active when ``apache-airflow-providers-openlineage`` is installed and configured; importing this
module imports nothing of it (operators mix in :class:`CartoLineageMixin` at DAG-parse time).

Naming follows the OpenLineage naming spec (https://openlineage.io/docs/spec/naming): tables of the
CARTO Data Warehouse, a BigQuery project, are namespace ``bigquery`` and name
``{project}.{dataset}.{table}``. CARTO does not say which warehouse other CARTO connections are on
without another API call, so their tables get the namespace ``carto://{connection}`` (as the
``carto`` asset URIs of :mod:`carto_provider.assets`).
An imported file is namespace ``{scheme}://{host}`` and name its path (query string dropped: signed
URLs carry credentials).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from carto_provider.api.sql import CARTO_DW

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.providers.openlineage.sqlparser import DatabaseInfo

log = logging.getLogger(__name__)

BIGQUERY_NAMESPACE = "bigquery"
#: ``source`` of the externalQuery run facet: the id is CARTO's job id.
JOB_ID_SOURCE = "carto"


def namespace_of(connection: str, api_base_url: str | None = None) -> str:
    """The OpenLineage namespace of a CARTO connection's tables (``api_base_url`` is not used: the
    ``carto`` asset URIs, converted by :mod:`carto_provider.assets`, do not carry it)."""
    if connection == CARTO_DW:
        return BIGQUERY_NAMESPACE
    return f"carto://{connection}"


def database_info(connection: str, *, project: str | None, api_base_url: str | None = None) -> DatabaseInfo:
    """What OpenLineage's SQL parser needs to name the tables of ``connection``."""
    from airflow.providers.openlineage.sqlparser import DatabaseInfo

    namespace = namespace_of(connection, api_base_url)
    scheme, _, authority = namespace.partition("://")
    return DatabaseInfo(
        scheme=scheme,
        authority=authority or None,
        database=project,
        information_schema_columns=[
            "table_schema",
            "table_name",
            "column_name",
            "ordinal_position",
            "data_type",
        ],
        information_schema_table_name="INFORMATION_SCHEMA.COLUMNS",
        normalize_name_method=lambda name: name,
    )


def dialect_of(connection: str) -> str:
    """The SQL parser's dialect: BigQuery for the CARTO Data Warehouse, generic otherwise."""
    return "bigquery" if connection == CARTO_DW else "generic"


def _needs_project(sql: str | list[str], connection: str) -> bool:
    """True when a table of ``sql`` is named without its project (``dataset.table``)."""
    from airflow.providers.openlineage.sqlparser import SQLParser

    parsed = SQLParser(dialect=dialect_of(connection)).parse(SQLParser.split_sql_string(sql))
    if parsed is None:
        return False
    return any(not table.database for table in [*parsed.in_tables, *parsed.out_tables])


def sql_lineage(
    sql: str | list[str],
    *,
    connection: str,
    project: Callable[[], str | None],
    api_base_url: str | None = None,
    job_id: str | None = None,
) -> OperatorLineage:
    """Inputs, outputs, the SQL job facet and CARTO's job id of SQL run on ``connection``.

    ``project`` gives the Data Warehouse's project; it is called only when a table needs it.
    """
    from airflow.providers.openlineage.sqlparser import SQLParser

    needed = connection == CARTO_DW and _needs_project(sql, connection)
    info = database_info(connection, project=project() if needed else None, api_base_url=api_base_url)
    lineage = SQLParser(dialect=dialect_of(connection)).generate_openlineage_metadata_from_sql(
        sql=sql,
        hook=None,  # type: ignore[arg-type]  # not used without use_connection
        database_info=info,
        use_connection=False,
    )
    return with_job_id(lineage, job_id)


def with_job_id(lineage: OperatorLineage, job_id: str | None) -> OperatorLineage:
    """``lineage`` with CARTO's job id as the externalQuery run facet."""
    if not job_id:
        return lineage
    from airflow.providers.common.compat.openlineage.facet import ExternalQueryRunFacet

    lineage.run_facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=job_id, source=JOB_ID_SOURCE)
    return lineage


def url_dataset(url: str) -> Any:
    """The dataset of a file at ``url`` (namespace ``scheme://host[:port]``, name its path): no user
    info (``user:password@``), no query string (signed URLs carry credentials in both)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(url)
    return Dataset(namespace=f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}", name=parts.path or "/")


def table_dataset(
    table: str, *, connection: str, project: Callable[[], str | None], api_base_url: str | None = None
) -> Any:
    """The dataset of the table ``[project.]dataset.table`` on ``connection`` (backticks dropped)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = [p for p in table.replace("`", "").split(".") if p]
    if connection == CARTO_DW and len(parts) == 2:
        parts.insert(0, project() or "")
    return Dataset(namespace=namespace_of(connection, api_base_url), name=".".join(p for p in parts if p))


def import_lineage(
    url: str,
    destination: str,
    *,
    connection: str,
    project: Callable[[], str | None],
    api_base_url: str | None,
    job_id: str | None,
) -> OperatorLineage:
    """An import: its source file as input, its destination table as output, CARTO's job id."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    output = table_dataset(destination, connection=connection, project=project, api_base_url=api_base_url)
    return with_job_id(OperatorLineage(inputs=[url_dataset(url)], outputs=[output]), job_id)


# ---------------------------------------------------------------------------------------------- operators


def operator_lineage(operator: Any, task_instance: Any) -> OperatorLineage | None:
    """The lineage of a finished CARTO operator (SQL job, query, workflow or import); never raises."""
    try:
        return _operator_lineage(operator, task_instance)
    except Exception as exc:
        log.warning("OpenLineage: could not describe %s: %s", getattr(operator, "task_id", operator), exc)
        return None


def _operator_lineage(operator: Any, task_instance: Any) -> OperatorLineage:
    from carto_provider.hooks.carto import CartoAuthHook

    hook = CartoAuthHook(operator.carto_conn_id)
    connection = str(getattr(operator, "connection", None) or CARTO_DW)
    context: dict[str, Any] = {
        "connection": connection,
        "project": lambda: hook.get_carto_dw_credentials()[0],
        "api_base_url": hook.settings.api_base_url,
        # Set by CartoJobOperator when it starts or resumes (not XCom: the listener may run in a fork).
        "job_id": getattr(operator, "carto_job_id", None),
    }
    if hasattr(operator, "url") and hasattr(operator, "destination"):
        return import_lineage(operator.url, operator.destination, **context)
    sql = operator.job_sql()[0] if hasattr(operator, "job_sql") else operator.sql
    return sql_lineage(sql, **context)


class CartoLineageMixin:
    """Gives a CARTO operator ``get_openlineage_facets_on_complete`` (see :func:`operator_lineage`),
    and ``..._on_start`` the same datasets when its trigger ends the task (``end_from_trigger``: no
    worker runs after the job, so no COMPLETE event is sent)."""

    def get_openlineage_facets_on_start(self) -> OperatorLineage | None:
        """Called by the OpenLineage listener when the task starts (its datasets, without job id)."""
        if getattr(self, "deferrable", False) and getattr(self, "end_from_trigger", False):
            return operator_lineage(self, None)
        from airflow.providers.openlineage.extractors import OperatorLineage

        return OperatorLineage()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """Called by the OpenLineage listener when the task succeeded."""
        return operator_lineage(self, task_instance)
