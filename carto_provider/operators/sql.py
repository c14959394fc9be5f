"""Run SQL through CARTO: ``CartoSQLOperator`` (a job, any length) and ``CartoQueryOperator`` (rows to XCom).

CARTO's SQL API runs SQL on any warehouse connected to CARTO (CARTO Data Warehouse, BigQuery,
Snowflake, Redshift, PostgreSQL, Databricks), named by its CARTO connection name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from carto_provider.api.identity import TaskIdentity, fingerprint
from carto_provider.api.jobs import SQL_JOB, CartoJob
from carto_provider.api.sql import CARTO_DW, QueryParameters
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.lineage import CartoLineageMixin
from carto_provider.operators.base import CartoJobOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: Default bound on the rows a query may push to XCom.
DEFAULT_MAX_ROWS = 1_000


class CartoSQLJobOperator(CartoJobOperator):
    """Base of the operators that run a CARTO SQL job (``POST /v3/sql/{connection}/job``).

    :param connection: the CARTO connection name the SQL runs on (``carto_dw`` by default).
    Other arguments: see :class:`~carto_provider.operators.base.CartoJobOperator`.
    """

    def __init__(self, *, connection: str = CARTO_DW, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connection = connection

    def job_sql(self) -> tuple[str, QueryParameters | None]:
        """The SQL and query parameters to run."""
        raise NotImplementedError

    kind = SQL_JOB
    hook_class = CartoSQLHook

    def submit(self, hook: CartoSQLHook, identity: TaskIdentity | None) -> CartoJob:
        sql, parameters = self.job_sql()
        return hook.submit_job(
            sql,
            connection=self.connection,
            query_parameters=parameters,
            metadata=identity.metadata(self._fingerprint()) if identity is not None else None,
        )

    def find_previous(self, hook: CartoSQLHook, identity: TaskIdentity) -> CartoJob | None:
        listed = hook.list_jobs(
            metadata=identity.task_tags(self._fingerprint()), created_since=identity.listed_since()
        )
        earlier = [item for item in listed if identity.is_earlier_try(item.get("metadata"))]
        job_id = (earlier[0].get("externalId") or earlier[0].get("jobId")) if earlier else None
        return hook.get_job(str(job_id), connection=self.connection) if job_id else None

    def _fingerprint(self) -> str:
        sql, parameters = self.job_sql()
        return fingerprint(self.connection, sql, parameters)


class CartoSQLOperator(CartoSQLJobOperator):
    """Run SQL as a CARTO SQL job and wait for it; returns the job's ids
    (``{"job_id", "external_id", "connection", "status"}``).

    Use it for anything that may take more than CARTO's one-minute limit on synchronous queries:
    DDL, DML, scripts, ``CREATE TABLE ... AS SELECT``.

    :param sql: the SQL, or a path ending in ``.sql`` to a template file (relative to the DAG folder
        or ``template_searchpath``). Templated.
    :param query_parameters: parameters the SQL uses: a dict for BigQuery/CARTO DW ``@name``, a list
        for Snowflake ``:1`` or PostgreSQL/Redshift ``$1``. Templated.
    :param connection: the CARTO connection name (``carto_dw`` by default). Templated.
    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param poll_interval: the longest wait between status checks (default ``[carto] poll_interval``).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param cancel_on_kill: cancel the CARTO job when the task is killed or times out (default True).
    """

    template_fields: Sequence[str] = ("sql", "query_parameters", "connection")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "query_parameters": "json"}

    def __init__(
        self,
        *,
        sql: str,
        query_parameters: QueryParameters | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.query_parameters = query_parameters

    def job_sql(self) -> tuple[str, QueryParameters | None]:
        return self.sql, self.query_parameters


class CartoQueryOperator(CartoLineageMixin, BaseOperator):
    """Run a short query (``POST /v3/sql/{connection}/query``) and return its rows (to XCom).

    For small results only: CARTO stops synchronous queries after one minute and returns at most
    200,000 rows, and XCom is no place for big data. More than ``max_rows`` rows fails the task with
    a clear error; write big results to a table with :class:`CartoSQLOperator` instead.

    :param sql: the query, or a path ending in ``.sql``. Templated.
    :param query_parameters: see :class:`CartoSQLOperator`. Templated.
    :param connection: the CARTO connection name (``carto_dw`` by default). Templated.
    :param max_rows: the most rows accepted (default 1,000).
    :param carto_conn_id: the Airflow connection (type ``carto``).
    """

    template_fields: Sequence[str] = ("sql", "query_parameters", "connection")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "query_parameters": "json"}
    ui_color = "#3ab6e0"

    def __init__(
        self,
        *,
        sql: str,
        query_parameters: QueryParameters | None = None,
        connection: str = CARTO_DW,
        max_rows: int = DEFAULT_MAX_ROWS,
        carto_conn_id: str = CartoSQLHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_rows < 0:
            raise ValueError("max_rows must be zero or more.")
        self.sql = sql
        self.query_parameters = query_parameters
        self.connection = connection
        self.max_rows = max_rows
        self.carto_conn_id = carto_conn_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Run the query; return its rows."""
        result = CartoSQLHook(self.carto_conn_id).run_query(
            self.sql,
            connection=self.connection,
            query_parameters=self.query_parameters,
            max_rows=self.max_rows,
        )
        self.log.info("The query returned %d row(s) from connection %r", len(result.rows), self.connection)
        return result.rows
