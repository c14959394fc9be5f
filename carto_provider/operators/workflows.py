"""``CartoRunWorkflowOperator``: run a CARTO Workflow through its API procedure, as a SQL job.

Enabling API access on a workflow (its menu > API > Enable API access) makes CARTO generate a stored
procedure in the connection's ``workflows_temp`` dataset or schema; variables marked *Parameter*
become its arguments. The workflow runs by calling that procedure as a SQL job, as CARTO's API
dialog shows (CARTO DW / BigQuery)::

    POST /v3/sql/{connection}/job
    {"query": "CALL `proj.workflows_temp.wfproc_1a2b`(@number_of_clusters,@store_type)",
     "queryParameters": {"number_of_clusters": 2, "store_type": "Supermarket"}}

How the call is built for each warehouse: :mod:`carto_provider.api.workflows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from carto_provider.api.identity import TaskIdentity
from carto_provider.api.sql import CARTO_DW, QueryParameters
from carto_provider.api.workflows import BIGQUERY_LIKE, bind_call, parameters_query, workflow_call
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.operators.sql import CartoSQLJobOperator


class CartoRunWorkflowOperator(CartoSQLJobOperator):
    """Run a CARTO Workflow's API procedure as a SQL job and wait for it; returns the job's ids.

    Give either ``call``, the exact ``CALL ...`` from the workflow's API dialog (its ``@name`` /
    ``:name`` placeholders are bound from ``parameters`` by name), or ``procedure`` and
    ``parameters``: the call is then built for the connection's warehouse, binding every parameter
    by name (BigQuery and CARTO DW: in the procedure's argument order, read from its dataset's
    ``INFORMATION_SCHEMA``; Snowflake, Databricks, PostgreSQL: named arguments; Redshift: use ``call``).

    :param procedure: the procedure's full name from the workflow's API dialog. Templated.
    :param parameters: the workflow's parameters by name. Templated.
    :param call: the exact ``CALL`` statement from the API dialog (instead of ``procedure``). Templated.
    :param provider: the warehouse behind ``connection``: ``bigquery`` (also CARTO DW),
        ``snowflake``, ``databricks``, ``postgres`` or ``redshift``. Default: ``carto_dw`` is BigQuery,
        any other connection is looked up in CARTO (``GET /v3/connections``).
    :param connection: the CARTO connection the workflow runs on (``carto_dw`` by default). Templated.
    Other arguments: see :class:`~carto_provider.operators.sql.CartoSQLOperator`.
    """

    template_fields: Sequence[str] = ("procedure", "parameters", "call", "connection")
    template_fields_renderers = {"parameters": "json", "call": "sql"}

    def __init__(
        self,
        *,
        procedure: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        call: str | None = None,
        provider: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (procedure is None) == (call is None):
            raise ValueError(f"{self.task_id}: give either procedure (and parameters) or call, not both.")
        self.procedure = procedure
        self.parameters = parameters
        self.call = call
        self.provider = provider
        self._job_sql: tuple[str, QueryParameters | None] | None = None

    def submit(self, hook: CartoSQLHook, identity: TaskIdentity | None) -> Any:
        self._job_sql = self._build(hook)
        return super().submit(hook, identity)

    def find_previous(self, hook: CartoSQLHook, identity: TaskIdentity) -> Any:
        self._job_sql = self._build(hook)
        return super().find_previous(hook, identity)

    def job_sql(self) -> tuple[str, QueryParameters | None]:
        """The CALL and its parameters: as submitted, or (before, e.g. for lineage) as built without
        asking CARTO anything (BigQuery placeholders then in the order given)."""
        return self._job_sql if self._job_sql is not None else self._build(None)

    def _build(self, hook: CartoSQLHook | None) -> tuple[str, QueryParameters | None]:
        if self.call is not None:
            return bind_call(self.call, self.parameters)
        assert self.procedure is not None
        provider = self._provider(hook) if hook is not None else (self.provider or "bigquery").lower()
        order = None
        if provider in BIGQUERY_LIKE and self.parameters and hook is not None:
            sql, lookup = parameters_query(self.procedure)
            rows = hook.run_query(sql, connection=self.connection, query_parameters=lookup).rows
            order = [str(row["parameter_name"]) for row in rows]
        return workflow_call(self.procedure, self.parameters, provider=provider, argument_order=order)

    def _provider(self, hook: CartoSQLHook) -> str:
        if self.provider:
            return self.provider.lower()
        if self.connection == CARTO_DW:
            return "carto_dw"
        listed = hook.list_connections()
        found = [c for c in listed if c.get("name") == self.connection and c.get("provider")]
        if not found:
            raise ValueError(
                f"{self.task_id}: CARTO lists no provider for connection {self.connection!r}; set provider="
                "('bigquery', 'snowflake', 'databricks', 'postgres' or 'redshift')."
            )
        return str(found[0]["provider"]).lower()
