"""``CartoRunWorkflowOperator``: run a CARTO Workflow through its API procedure.

Enabling API access on a workflow (its menu > API > Enable API access) makes CARTO generate a stored
procedure in the connection's ``workflows_temp`` dataset; variables marked *Parameter* become its
arguments. The workflow runs by calling that procedure as a SQL job, as CARTO's API dialog shows::

    POST /v3/sql/{connection}/job
    {"query": "CALL `proj.workflows_temp.wfproc_1a2b`(@number_of_clusters,@store_type)",
     "queryParameters": {"number_of_clusters": 2, "store_type": "Supermarket"}}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from carto_provider.hooks.sql_api import QueryParameters
from carto_provider.operators.sql import CartoSQLJobOperator

_PROCEDURE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){1,2}")
_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def workflow_call(procedure: str, parameters: Mapping[str, Any] | None = None) -> str:
    """``CALL `procedure`(@a,@b)`` for a workflow's API procedure; parameters in the procedure's order."""
    name = (procedure or "").strip().strip("`")
    if not _PROCEDURE.fullmatch(name):
        raise ValueError(
            f"Not a workflow procedure name: {procedure!r}. Copy it from the workflow's API dialog in "
            "CARTO, e.g. 'my-project.workflows_temp.wfproc_1a2b3c'."
        )
    names = list(parameters or {})
    bad = [n for n in names if not isinstance(n, str) or not _PARAMETER.fullmatch(n)]
    if bad:
        raise ValueError(f"Workflow parameter names must be SQL identifiers; not {bad!r}.")
    return f"CALL `{name}`({','.join('@' + n for n in names)})"


class CartoRunWorkflowOperator(CartoSQLJobOperator):
    """Run a CARTO Workflow's API procedure as a SQL job and wait for it; returns the job's ids.

    Works for workflows on the CARTO Data Warehouse and BigQuery connections (``@name`` parameters,
    as CARTO's API dialog shows them). For another warehouse, run the call the dialog shows with
    :class:`~carto_provider.operators.sql.CartoSQLOperator`.

    :param procedure: the procedure's full name from the workflow's API dialog. Templated.
    :param parameters: the workflow's parameters, in the procedure's argument order. Templated.
    :param connection: the CARTO connection the workflow runs on (``carto_dw`` by default). Templated.
    Other arguments: see :class:`~carto_provider.operators.sql.CartoSQLOperator`.
    """

    template_fields: Sequence[str] = ("procedure", "parameters", "connection")
    template_fields_renderers = {"parameters": "json"}

    def __init__(self, *, procedure: str, parameters: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.procedure = procedure
        self.parameters = parameters

    def job_sql(self) -> tuple[str, QueryParameters | None]:
        parameters = dict(self.parameters or {})
        return workflow_call(self.procedure, parameters), parameters or None
