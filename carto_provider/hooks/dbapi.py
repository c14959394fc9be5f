"""``CartoDbApiHook``: CARTO as a common.sql ``DbApiHook``, the hook Airflow builds for ``carto`` connections.

With it, common.sql works on CARTO: ``SQLExecuteQueryOperator(conn_id="carto_default", ...)``, the
SQL check operators, ``SqlSensor``, and ``get_records`` / ``get_first`` / ``get_df`` / ``insert_rows``.
Its DB-API connection (:mod:`carto_provider.api.dbapi`) runs SQL through CARTO's SQL API on one CARTO
connection: the hook parameter ``carto_connection``, else the connection's extra of that name, else
``carto_dw`` (the CARTO Data Warehouse, BigQuery SQL).

It is also a :class:`~carto_provider.hooks.sql.CartoSQLHook` (so a ``CartoAuthHook``): tokens,
``get_carto_dw_client()``, jobs and imports work on it too. One difference: ``get_conn()`` returns the
DB-API connection, as common.sql requires; ``get_auth()`` returns the CARTO authentication.
"""

from __future__ import annotations

import datetime as dt
from contextlib import closing
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf
from airflow.providers.common.sql.dialects.dialect import Dialect
from airflow.providers.common.sql.hooks.sql import DbApiHook

from carto_provider.api.dbapi import Connection, json_value
from carto_provider.api.sql import CARTO_DW
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.lineage import dialect_of, with_job_id

if TYPE_CHECKING:
    import pandas as pd
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.providers.openlineage.sqlparser import DatabaseInfo

#: The SQL dialect of a CARTO connection's warehouse, by CARTO's ``provider`` name.
DIALECT_OF_PROVIDER = {
    "bigquery": "bigquery",
    "snowflake": "snowflake",
    "postgres": "postgresql",
    "redshift": "redshift",
    "databricks": "databricks",
    "databricksRest": "databricks",
}
#: Keyword arguments of common.sql's ``DbApiHook``, passed on to it.
DBAPI_HOOK_PARAMS = frozenset(
    {
        "schema",
        "log_sql",
        "insert_statement_format",
        "replace_statement_format",
        "escape_word_format",
        "escape_column_names",
        "connection",
    }
)
DEFAULT_POLL_INTERVAL = 10.0


class CartoBigQueryDialect(Dialect):
    """common.sql's dialect for BigQuery SQL on CARTO: backtick-quoted names, columns read from a
    ``LIMIT 0`` query (no SQLAlchemy inspector behind the SQL API)."""

    @property
    def escape_word_format(self) -> str:
        """BigQuery quotes identifiers with backticks."""
        return "`{}`"

    def get_column_names(self, table: str, schema: str | None = None, predicate: Any = None) -> list[str]:
        """The table's column names, in order."""
        name = f"{schema}.{table}" if schema else table
        hook = self.hook
        with closing(hook.get_conn()) as conn, closing(conn.cursor()) as cursor:
            cursor.execute(f"SELECT * FROM {name} LIMIT 0")  # noqa: S608 - a table name, not data
            return [column[0] for column in cursor.description or []]

    def get_target_fields(self, table: str, schema: str | None = None) -> list[str] | None:
        """Every column (BigQuery has no identity columns)."""
        return self.get_column_names(table, schema)

    def get_primary_keys(self, table: str, schema: str | None = None) -> list[str] | None:
        """None: BigQuery primary keys are not enforced, so none are reported."""
        return None


class CartoDbApiHook(CartoSQLHook, DbApiHook):  # type: ignore[misc]  # CARTO's test_connection wins
    """common.sql's ``DbApiHook`` over CARTO's SQL API (see the module doc).

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param carto_connection: the CARTO connection the SQL runs on (default: the connection's extra
        ``carto_connection``, else ``carto_dw``).
    :param statement_mode: ``auto`` (rows through ``/query``, other statements as SQL jobs),
        ``query`` or ``job``.
    :param job_timeout: seconds a statement run as a job may take before it is cancelled.
    :param poll_interval: the longest wait between two job status checks (default ``[carto] poll_interval``).
    :param kwargs: ``CartoSQLHook``'s and common.sql ``DbApiHook``'s parameters (``schema``,
        ``log_sql``...), and the connection's extras (see :mod:`carto_provider._hook_params`).
    """

    conn_name_attr = "carto_conn_id"
    default_conn_name = "carto_default"
    conn_type = "carto"
    hook_name = "CARTO"
    base_hook_params = CartoSQLHook.base_hook_params | DBAPI_HOOK_PARAMS
    supports_autocommit = False
    supports_executemany = True
    _placeholder = "?"
    _test_connection_sql = "SELECT 1"

    def __init__(
        self,
        carto_conn_id: str = default_conn_name,
        *,
        carto_connection: str | None = None,
        statement_mode: str = "auto",
        job_timeout: float | None = None,
        poll_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(carto_conn_id, **kwargs)
        self._carto_connection = carto_connection
        self.statement_mode = statement_mode
        self.job_timeout = job_timeout
        self.poll_interval = poll_interval
        #: The CARTO SQL jobs this hook's statements ran as (for lineage), oldest first.
        self.job_ids: list[str] = []

    # Airflow 2.x reads the connection form only from methods defined on the registered class itself.
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The CARTO connection form's extra fields (see ``CartoAuthHook``)."""
        return CartoSQLHook.get_connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The CARTO connection form's relabelled and hidden fields (see ``CartoAuthHook``)."""
        return CartoSQLHook.get_ui_field_behaviour()

    @property
    def carto_connection(self) -> str:
        """The CARTO connection the SQL runs on."""
        if self._carto_connection:
            return self._carto_connection
        extra = self.hook_params.extra_of(self.carto_conn_id, self.connection_extra)
        return str(extra.get("carto_connection") or "").strip() or CARTO_DW

    def get_conn(self) -> Connection:  # type: ignore[override]
        """A PEP 249 connection to :attr:`carto_connection` (:mod:`carto_provider.api.dbapi`)."""
        poll_interval = self.poll_interval or conf.getfloat(
            "carto", "poll_interval", fallback=DEFAULT_POLL_INTERVAL
        )
        return Connection(
            self,
            self.carto_connection,
            statement_mode=self.statement_mode,
            poll_interval=poll_interval,
            job_timeout=self.job_timeout,
            job_ids=self.job_ids,
        )

    # ------------------------------------------------------------------ dialect

    @cached_property
    def dialect_name(self) -> str:
        """The warehouse's SQL dialect: the extra ``dialect``, BigQuery for the CARTO Data Warehouse,
        else the ``provider`` CARTO lists for the connection (``default`` when unknown)."""
        stated = str(self.connection_extra.get("dialect") or "").strip()
        if stated:
            return stated
        if self.carto_connection == CARTO_DW:
            return "bigquery"
        return DIALECT_OF_PROVIDER.get(self._provider_of(self.carto_connection) or "", "default")

    def _provider_of(self, name: str) -> str | None:
        body = self._call("GET", "/v3/connections")
        items = body if isinstance(body, list) else body.get("data", []) if isinstance(body, dict) else []
        for item in items:
            if isinstance(item, dict) and item.get("name") == name:
                return str(item.get("provider") or item.get("providerId") or "") or None
        return None

    @cached_property
    def dialect(self) -> Dialect:
        """:class:`CartoBigQueryDialect` for BigQuery; common.sql's registered dialects otherwise."""
        if self.dialect_name == "bigquery":
            return CartoBigQueryDialect(self)
        return super().dialect

    # ------------------------------------------------------------------ common.sql behaviour

    @staticmethod
    def _serialize_cell(cell: Any, conn: Any = None) -> Any:
        """A value for ``insert_rows``: kept as its JSON type (not turned into text), so a number
        stays a number in CARTO's ``queryParameters``."""
        if isinstance(cell, dt.datetime | dt.date | dt.time):
            return cell.isoformat()
        return json_value(cell)

    def _get_pandas_df(self, sql: Any, parameters: Any = None, **kwargs: Any) -> pd.DataFrame:
        """The rows of ``sql`` (the last statement when a list) as a pandas DataFrame."""
        try:
            import pandas as pd
        except ImportError:
            from airflow.exceptions import AirflowOptionalProviderFeatureException

            raise AirflowOptionalProviderFeatureException(
                "get_df(df_type='pandas') needs pandas: pip install pandas"
            ) from None
        statements = [sql] if isinstance(sql, str) else list(sql)
        with closing(self.get_conn()) as conn, closing(conn.cursor()) as cursor:
            for statement in statements:
                cursor.execute(statement, parameters)
            columns = [column[0] for column in cursor.description or []]
            rows = cursor.fetchall() if cursor.description is not None else []
        return pd.DataFrame.from_records(rows, columns=columns, **kwargs)

    def get_sqlalchemy_engine(self, engine_kwargs: Any = None) -> Any:
        """None: there is no SQLAlchemy dialect for CARTO's SQL API (OpenLineage's parser copes)."""
        return None

    def get_uri(self) -> str:
        """``carto://<API host>/<CARTO connection>`` (no credentials): what common.sql logs and hashes."""
        host = (self.connection.host or "").split("://")[-1].strip("/")
        return f"carto://{host}/{self.carto_connection}"

    # ------------------------------------------------------------------ OpenLineage (carto_provider.lineage)

    def get_openlineage_database_info(self, connection: Any) -> DatabaseInfo:
        """Namespace ``bigquery`` and the Data Warehouse's project for the CARTO DW (naming spec)."""
        from carto_provider.lineage import database_info

        project = self.get_carto_dw_credentials()[0] if self.carto_connection == CARTO_DW else None
        return database_info(self.carto_connection, project=project, api_base_url=self.settings.api_base_url)

    def get_openlineage_database_dialect(self, connection: Any) -> str:
        """The OpenLineage SQL parser's dialect (BigQuery for the CARTO DW)."""
        return dialect_of(self.carto_connection)

    def get_openlineage_default_schema(self) -> str | None:
        """None: BigQuery has no default dataset."""
        return None

    def get_openlineage_database_specific_lineage(self, task_instance: Any) -> OperatorLineage | None:
        """CARTO's id of the last SQL job this hook ran, as the externalQuery run facet."""
        if not self.job_ids:
            return None
        from airflow.providers.openlineage.extractors import OperatorLineage

        return with_job_id(OperatorLineage(), self.job_ids[-1])
