"""The SQL job that runs a CARTO Workflow: its ``CALL`` and parameters, right for each warehouse.

Enabling API access on a workflow makes CARTO compile it into a stored procedure whose arguments are
the variables marked *Parameter*; the workflow runs by calling that procedure as a SQL job, as the
workflow's API dialog shows. Parameters are always bound **by name**, never by position or by the
order of a dict:

* **CARTO DW / BigQuery**: ``CALL `p.d.proc`(@a,@b)`` with ``queryParameters`` ``{"a": .., "b": ..}``.
  BigQuery binds a CALL's arguments by position, so the placeholders follow the procedure's own
  argument order, read from ``INFORMATION_SCHEMA.PARAMETERS``.
* **Snowflake, Databricks, PostgreSQL**: named arguments, ``CALL db.s.proc(a => :1, b => :2)``
  (PostgreSQL ``$1``, Databricks ``:a``), so the order of the values cannot matter.
* **Redshift** has no named arguments in ``CALL``: pass the exact ``CALL`` from the API dialog.

The exact ``CALL ...`` text from the dialog is accepted as it is for every warehouse; its ``@name``
or ``:name`` placeholders are bound by name from ``parameters``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Providers as CARTO names them in its connections, and the CARTO Data Warehouse.
BIGQUERY_LIKE = frozenset({"bigquery", "carto_dw", "carto"})
NAMED_ARGUMENTS = {"snowflake": ":{n}", "postgres": "${n}", "postgresql": "${n}", "databricks": ":{name}"}
PROVIDERS = sorted(BIGQUERY_LIKE | set(NAMED_ARGUMENTS) | {"redshift"})

_PART = re.compile(r"[A-Za-z0-9_$-]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"(?<![\w@:])[@:]([A-Za-z_][A-Za-z0-9_]*)")


def _name_parts(procedure: str) -> list[str]:
    parts = [part.strip().strip('`"') for part in (procedure or "").strip().strip("`").split(".")]
    if not 2 <= len(parts) <= 3 or not all(_PART.fullmatch(part) for part in parts):
        raise ValueError(
            f"Not a workflow procedure name: {procedure!r}. Copy it from the workflow's API dialog in "
            "CARTO, e.g. 'my-project.workflows_temp.wfproc_1a2b3c'."
        )
    return parts


def _check_names(names: Sequence[Any]) -> None:
    bad = [name for name in names if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name)]
    if bad:
        raise ValueError(f"Workflow parameter names must be SQL identifiers; not {bad!r}.")


def quote_procedure(procedure: str, provider: str) -> str:
    """The procedure's name quoted for its warehouse: one backquoted path for BigQuery, each part
    double-quoted (Databricks: backquoted) when it is not a plain identifier elsewhere."""
    parts = _name_parts(procedure)
    if provider in BIGQUERY_LIKE:
        return f"`{'.'.join(parts)}`"
    quote = "`" if provider == "databricks" else '"'
    return ".".join(p if _IDENTIFIER.fullmatch(p) else f"{quote}{p}{quote}" for p in parts)


def workflow_call(
    procedure: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    provider: str = "bigquery",
    argument_order: Sequence[str] | None = None,
) -> tuple[str, Any]:
    """The ``CALL`` and the ``queryParameters`` that run ``procedure`` with ``parameters`` by name.

    ``argument_order`` is the procedure's argument names in order (BigQuery binds by position, so
    it is required there when there are parameters).
    """
    provider = provider.lower()
    values = dict(parameters or {})
    _check_names(list(values))
    name = quote_procedure(procedure, provider)
    if provider in BIGQUERY_LIKE:
        order = list(argument_order if argument_order is not None else values)
        if argument_order is not None and sorted(order) != sorted(values):
            raise ValueError(
                f"The workflow procedure {procedure} takes the parameters {order}; got {sorted(values)}."
            )
        return f"CALL {name}({','.join('@' + n for n in order)})", (values or None)
    if provider not in NAMED_ARGUMENTS:
        raise ValueError(
            f"{provider!r} procedures take their arguments by position only: pass the exact CALL from "
            "the workflow's API dialog (call=...) instead of procedure and parameters."
        )
    marker = NAMED_ARGUMENTS[provider]
    names = list(values)
    arguments = ", ".join(f"{n} => {marker.format(n=i + 1, name=n)}" for i, n in enumerate(names))
    bound: Any = values if provider == "databricks" else [values[n] for n in names]
    return f"CALL {name}({arguments})", (bound or None)


def bind_call(call: str, parameters: Mapping[str, Any] | Sequence[Any] | None) -> tuple[str, Any]:
    """The exact ``CALL`` from the API dialog and its ``queryParameters``: named ``@a``/``:a``
    placeholders take their values from ``parameters`` by name (every one, and nothing else)."""
    text = (call or "").strip().rstrip(";").strip()
    if not re.match(r"CALL\s", text, re.IGNORECASE):
        raise ValueError(f"Not a CALL statement: {call!r}. Copy it from the workflow's API dialog.")
    if parameters is not None and not isinstance(parameters, Mapping):
        return text, (list(parameters) or None)  # positional ($1, :1, ?) as the dialog shows them
    wanted = sorted(set(_PLACEHOLDER.findall(_without_strings(text))))
    given = dict(parameters or {})
    if sorted(given) != wanted:
        raise ValueError(f"The CALL uses the parameters {wanted}; got {sorted(given)}.")
    return text, (given or None)


def _without_strings(sql: str) -> str:
    return re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", sql)


def parameters_query(procedure: str) -> tuple[str, dict[str, str]]:
    """The BigQuery query listing a procedure's arguments in order (``INFORMATION_SCHEMA.PARAMETERS``
    of its dataset)."""
    parts = _name_parts(procedure)
    if len(parts) != 3:
        raise ValueError(f"A BigQuery workflow procedure is project.dataset.name, not {procedure!r}.")
    dataset = ".".join(parts[:2])
    sql = (
        f"SELECT parameter_name FROM `{dataset}.INFORMATION_SCHEMA.PARAMETERS` "  # noqa: S608 - checked name
        "WHERE specific_name = @name ORDER BY ordinal_position"
    )
    return sql, {"name": parts[2]}
