"""The emulator's data warehouse: DuckDB executing BigQuery SQL.

Shared by the BigQuery REST routes (the CARTO Data Warehouse) and the CARTO SQL API / imports routes,
so a table loaded one way can be read the other. One in-memory DuckDB per emulator.

Interface (stable, used by several route modules)::

    wh = get_warehouse(state)
    result = wh.execute("SELECT 1 AS x", params={"name": value} | [v1, v2] | None)
    result.schema  # [{"name": "x", "type": "INT64", "mode": "NULLABLE"}, ...]  (BigQuery type names)
    result.rows    # [{"x": 1}, ...]
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from carto_provider.testing.state import EmulatorState


@dataclass
class QueryResult:
    """Rows as dicts plus a BigQuery-style schema."""

    schema: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


class WarehouseError(Exception):
    """SQL the warehouse cannot run; ``reason`` is BigQuery's error reason (``invalidQuery``...)."""

    def __init__(self, message: str, reason: str = "invalidQuery") -> None:
        super().__init__(message)
        self.reason = reason


class Warehouse:
    """A thread-safe DuckDB database."""

    def __init__(self) -> None:
        import duckdb

        self.lock = threading.RLock()
        self.conn = duckdb.connect(":memory:")

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> QueryResult:
        """Run one BigQuery SQL statement and return its result (empty for DDL/DML)."""
        import duckdb

        with self.lock:
            try:
                cursor = self.conn.execute(sql, params or None)
            except duckdb.Error as exc:
                raise WarehouseError(str(exc)) from None
            if cursor.description is None:
                return QueryResult()
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            return QueryResult([{"name": n, "type": "STRING", "mode": "NULLABLE"} for n in names], rows)


def get_warehouse(state: EmulatorState) -> Warehouse:
    """The emulator's warehouse, created on first use."""
    with state.lock:
        warehouse = state.extensions.get("warehouse")
        if warehouse is None:
            warehouse = state.extensions["warehouse"] = Warehouse()
        return warehouse
