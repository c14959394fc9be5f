"""The emulator's data warehouse: DuckDB executing BigQuery SQL.

Shared by the BigQuery REST routes (the CARTO Data Warehouse) and the CARTO SQL API / imports routes,
so a table loaded one way can be read the other. One in-memory DuckDB per emulator.

Interface (stable, used by several route modules)::

    wh = get_warehouse(state)
    result = wh.execute("SELECT 1 AS x", params={"name": value} | [v1, v2] | None)
    result.schema  # [{"name": "x", "type": "INT64", "mode": "NULLABLE"}, ...]  (BigQuery type names)
    result.rows    # [{"x": 1}, ...]
    result.statement_type, result.num_dml_affected_rows  # "SELECT"/"INSERT"/"CREATE_TABLE"..., DML count

``execute`` takes BigQuery SQL (translated by :mod:`.bigquery_sql`), with named ``@param``
parameters (a dict) or positional ``?`` ones (a list); a multi-statement query returns the result of
its last statement. Values come back as Python values the way BigQuery means them: ``TIMESTAMP`` as
aware UTC datetimes, ``DATETIME`` naive, ``GEOGRAPHY`` as WKT text, ``JSON`` as text, ``NUMERIC`` as
``Decimal``, ``BYTES`` as bytes, ``RECORD`` as dicts and ``REPEATED`` as lists. Failures raise
:class:`WarehouseError` with BigQuery's reason (``invalidQuery``, ``notFound``, ``duplicate``...).

Datasets are DuckDB schemas; the CARTO DW's ``shared`` dataset exists from the start. Geography
(``ST_*``) needs the ``duckdb-extension-spatial`` package matching the installed ``duckdb``: it is
loaded from the package's files, offline.

duckdb and sqlglot are imported when a warehouse is first created, never at import time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carto_provider.testing.bigquery_sql import SPATIAL_MACROS, SQLTranslationError, Statement, translate
from carto_provider.testing.bigquery_types import (
    Field,
    SchemaError,
    bigquery_field,
    coerce_json_value,
    duckdb_type,
    fetchable_type,
    python_value,
    quote_identifier,
    standard_type,
)
from carto_provider.testing.state import EmulatorState

#: Datasets every CARTO Data Warehouse has.
DEFAULT_DATASETS = ("shared",)
_INTERNAL_SCHEMAS = ("main", "information_schema", "pg_catalog")
_INSERT_CHUNK_ROWS = 250


@dataclass
class QueryResult:
    """Rows as dicts plus a BigQuery-style schema."""

    schema: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    statement_type: str = "SELECT"
    num_dml_affected_rows: int | None = None


class WarehouseError(Exception):
    """SQL the warehouse cannot run; ``reason`` is BigQuery's error reason (``invalidQuery``...)."""

    def __init__(self, message: str, reason: str = "invalidQuery") -> None:
        super().__init__(message)
        self.reason = reason


def spatial_extension_path() -> Path | None:
    """The spatial extension file shipped by ``duckdb-extension-spatial`` for this duckdb, if installed.

    The wheel holds ``duckdb_extension_spatial/extensions/v<duckdb version>/spatial.duckdb_extension``
    (DuckDB-signed, so it loads without ``allow_unsigned_extensions``).
    """
    import duckdb

    spec = importlib.util.find_spec("duckdb_extension_spatial")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "extensions" / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
        if candidate.is_file():
            return candidate
    return None


class Warehouse:
    """A thread-safe in-memory DuckDB that speaks BigQuery SQL."""

    def __init__(self) -> None:
        import duckdb

        self.lock = threading.RLock()
        # No network: never download extensions, only load the packaged one.
        self.conn = duckdb.connect(
            ":memory:", config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
        )
        self.conn.execute("SET TimeZone = 'UTC'")
        self.spatial = self._load_spatial()
        # BigQuery SQL cannot read or write the machine's files; neither may DuckDB's own functions here.
        self.conn.execute("SET enable_external_access = false")
        for dataset in DEFAULT_DATASETS:
            self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(dataset)}")

    def _load_spatial(self) -> bool:
        import duckdb

        path = spatial_extension_path()
        try:
            self.conn.execute(f"LOAD '{path}'" if path else "LOAD spatial")
        except duckdb.Error:
            return False
        for macro in SPATIAL_MACROS:
            self.conn.execute(macro)
        return True

    # ------------------------------------------------------------------ SQL

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        default_dataset: str | None = None,
    ) -> QueryResult:
        """Run BigQuery SQL (one statement or several) and return the last statement's result.

        ``default_dataset`` resolves unqualified table names (BigQuery's ``defaultDataset``).
        """
        try:
            statements = translate(sql)
        except SQLTranslationError as exc:
            raise WarehouseError(str(exc), exc.reason) from None
        positional = list(params) if isinstance(params, Sequence) and not isinstance(params, str) else []
        result = QueryResult()
        with self.lock:
            if default_dataset:
                if not self.dataset_exists(default_dataset):
                    raise WarehouseError(f"Not found: Dataset {default_dataset}", "notFound")
                self.conn.execute("SET search_path = ?", [f"{quote_identifier(default_dataset)},main"])
            try:
                for statement in statements:
                    bound = _bind(statement, params, positional)
                    result = self._run(statement, bound)
            finally:
                if default_dataset:
                    self.conn.execute("RESET search_path")
        return result

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """Hold the warehouse and make everything inside one transaction, rolled back on error."""
        with self.lock:
            self.conn.execute("BEGIN TRANSACTION")
            try:
                yield self
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def translate(self, sql: str) -> list[str]:
        """The DuckDB SQL the warehouse would run for ``sql`` (for debugging)."""
        try:
            return [statement.sql for statement in translate(sql)]
        except SQLTranslationError as exc:
            raise WarehouseError(str(exc), exc.reason) from None

    def _run(self, statement: Statement, bound: Any) -> QueryResult:
        if statement.is_query:
            return self._query(statement.sql, bound)
        import duckdb

        try:
            cursor = self.conn.execute(statement.sql, bound)
            affected = None
            if statement.statement_type in ("INSERT", "UPDATE", "DELETE", "MERGE"):
                row = cursor.fetchone()
                affected = int(row[0]) if row else 0
        except duckdb.Error as exc:
            raise self._error(exc) from None
        return QueryResult(statement_type=statement.statement_type, num_dml_affected_rows=affected)

    def _query(self, duck_sql: str, bound: Any) -> QueryResult:
        import duckdb

        try:
            relation = self.conn.sql(duck_sql, params=bound)
            names, types = list(relation.columns), list(relation.types)
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise WarehouseError(f"Duplicate column names in the result are not supported: {duplicates}")
            casts = [fetchable_type(t) for t in types]
            if any(casts):
                relation = relation.project(
                    ", ".join(
                        f"CAST({quote_identifier(n)} AS {c}) AS {quote_identifier(n)}"
                        if c
                        else quote_identifier(n)
                        for n, c in zip(names, casts, strict=True)
                    )
                )
            fetched = relation.fetchall()
        except duckdb.Error as exc:
            raise self._error(exc) from None
        schema = [bigquery_field(n, t) for n, t in zip(names, types, strict=True)]
        rows = [
            {f["name"]: python_value(v, f) for f, v in zip(schema, values, strict=True)} for values in fetched
        ]
        return QueryResult(schema, rows, "SELECT")

    def _error(self, exc: Exception) -> WarehouseError:
        import duckdb

        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        if not self.spatial and "st_" in first.lower() and "does not exist" in first:
            return WarehouseError(
                "Unsupported by the CARTO emulator without DuckDB's spatial extension: geography "
                f"functions ({first}). Install it: pip install duckdb-extension-spatial=={duckdb.__version__}"
            )
        if isinstance(exc, duckdb.CatalogException):
            detail = first.removeprefix("Catalog Error: ")
            if "does not exist" in first:
                return WarehouseError(f"Not found: {detail}", "notFound")
            if "already exists" in first:
                return WarehouseError(f"Already Exists: {detail}", "duplicate")
        if isinstance(exc, duckdb.ParserException):
            return WarehouseError(f"Syntax error: {text.removeprefix('Parser Error: ')}")
        return WarehouseError(text)

    # ------------------------------------------------------------------ datasets

    def list_datasets(self) -> list[str]:
        """Dataset names, sorted."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT schema_name FROM duckdb_schemas() WHERE database_name = current_database() "
                "AND NOT internal AND schema_name NOT IN (SELECT unnest(?)) ORDER BY 1",
                [list(_INTERNAL_SCHEMAS)],
            ).fetchall()
        return [r[0] for r in rows]

    def dataset_exists(self, dataset: str) -> bool:
        """Whether ``dataset`` exists."""
        return dataset in self.list_datasets()

    def create_dataset(self, dataset: str, *, exists_ok: bool = False) -> None:
        """Create ``dataset`` (``duplicate`` error if it exists and not ``exists_ok``)."""
        with self.lock:
            if self.dataset_exists(dataset):
                if exists_ok:
                    return
                raise WarehouseError(f"Already Exists: Dataset {dataset}", "duplicate")
            self.conn.execute(f"CREATE SCHEMA {quote_identifier(dataset)}")

    def delete_dataset(self, dataset: str, *, delete_contents: bool = False) -> None:
        """Delete ``dataset``; one with tables needs ``delete_contents`` (else ``resourceInUse``)."""
        with self.lock:
            if not self.dataset_exists(dataset):
                raise WarehouseError(f"Not found: Dataset {dataset}", "notFound")
            if self.list_tables(dataset) and not delete_contents:
                raise WarehouseError(f"Dataset {dataset} is still in use", "resourceInUse")
            self.conn.execute(f"DROP SCHEMA {quote_identifier(dataset)} CASCADE")

    # ------------------------------------------------------------------ tables

    def list_tables(self, dataset: str) -> list[tuple[str, str]]:
        """``(name, "TABLE" | "VIEW")`` of a dataset's tables, sorted by name."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE schema_name = ? AND NOT temporary "
                "UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE schema_name = ? "
                "AND NOT internal AND NOT temporary ORDER BY 1",
                [dataset, dataset],
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def table_kind(self, dataset: str, table: str) -> str | None:
        """``"TABLE"``, ``"VIEW"`` or None when it does not exist."""
        return dict(self.list_tables(dataset)).get(table)

    def table_schema(self, dataset: str, table: str) -> list[Field] | None:
        """The BigQuery schema of a table or view, or None when it does not exist."""
        with self.lock:
            if self.table_kind(dataset, table) is None:
                return None
            relation = self.conn.sql(f"SELECT * FROM {_qualified(dataset, table)}")  # noqa: S608
            nullable = dict(
                self.conn.execute(
                    "SELECT column_name, is_nullable FROM duckdb_columns() WHERE schema_name = ? "
                    "AND table_name = ?",
                    [dataset, table],
                ).fetchall()
            )
            return [
                bigquery_field(n, t, nullable=bool(nullable.get(n, True)))
                for n, t in zip(relation.columns, relation.types, strict=True)
            ]

    def num_rows(self, dataset: str, table: str) -> int:
        """How many rows a table holds."""
        with self.lock:
            row = self.conn.execute(f"SELECT count(*) FROM {_qualified(dataset, table)}").fetchone()  # noqa: S608
        return int(row[0]) if row else 0

    def create_table(self, dataset: str, table: str, fields: list[Field]) -> None:
        """Create a table from a BigQuery schema (``REQUIRED`` fields become NOT NULL)."""
        if not fields:
            raise WarehouseError(f"Table {dataset}.{table} needs a schema with at least one field", "invalid")
        try:
            columns = ", ".join(
                f"{quote_identifier(f['name'])} {duckdb_type(f)}"
                + (" NOT NULL" if str(f.get("mode", "")).upper() == "REQUIRED" else "")
                for f in fields
            )
        except (SchemaError, KeyError) as exc:
            raise WarehouseError(f"Invalid schema: {exc}", "invalid") from None
        self._ddl(f"CREATE TABLE {_qualified(dataset, table)} ({columns})")

    def drop_table(self, dataset: str, table: str) -> bool:
        """Drop a table or view; False when it did not exist."""
        with self.lock:
            kind = self.table_kind(dataset, table)
            if kind is None:
                return False
            self._ddl(f"DROP {kind} {_qualified(dataset, table)}")
            return True

    def truncate_table(self, dataset: str, table: str) -> None:
        """Delete every row of a table."""
        self._ddl(f"DELETE FROM {_qualified(dataset, table)}")  # noqa: S608

    def _ddl(self, duck_sql: str) -> None:
        import duckdb

        with self.lock:
            try:
                self.conn.execute(duck_sql)
            except duckdb.Error as exc:
                raise self._error(exc) from None

    def read_rows(
        self,
        dataset: str,
        table: str,
        *,
        start: int = 0,
        limit: int | None = None,
        fields: list[str] | None = None,
    ) -> QueryResult:
        """Rows of a table in storage order (``tabledata.list``), optionally some fields only."""
        columns = ", ".join(quote_identifier(f) for f in fields) if fields else "*"
        sql = f"SELECT {columns} FROM {_qualified(dataset, table)} LIMIT ? OFFSET ?"  # noqa: S608
        with self.lock:
            return self._query(sql, [limit if limit is not None else 2**62, max(0, start)])

    def insert_rows(
        self,
        dataset: str,
        table: str,
        rows: Sequence[Any],
        *,
        skip_invalid_rows: bool = False,
        ignore_unknown_values: bool = False,
    ) -> dict[int, str]:
        """Insert JSON rows (``insertAll``, load jobs); returns ``{row index: error}`` for bad rows.

        Like BigQuery, one bad row stops the whole batch unless ``skip_invalid_rows``.
        """
        with self.lock:
            schema = self.table_schema(dataset, table)
            if schema is None:
                raise WarehouseError(f"Not found: Table {dataset}.{table}", "notFound")
            values, errors = _coerce_rows(rows, schema, ignore_unknown_values)
            if errors and not skip_invalid_rows:
                return errors
            good = [v for i, v in enumerate(values) if i not in errors]
            self._insert(dataset, table, schema, good)
            return errors

    def _insert(self, dataset: str, table: str, schema: list[Field], rows: list[list[Any]]) -> None:
        import duckdb

        if not rows:
            return
        columns = ", ".join(quote_identifier(f["name"]) for f in schema)
        slot = "(" + ", ".join(_insert_slot(f) for f in schema) + ")"
        for start in range(0, len(rows), _INSERT_CHUNK_ROWS):
            chunk = rows[start : start + _INSERT_CHUNK_ROWS]
            values = ", ".join([slot] * len(chunk))
            sql = f"INSERT INTO {_qualified(dataset, table)} ({columns}) VALUES {values}"  # noqa: S608
            try:
                self.conn.execute(sql, [v for row in chunk for v in row])
            except duckdb.Error as exc:
                raise self._error(exc) from None


def _qualified(dataset: str, table: str) -> str:
    """``"dataset"."table"``: quoted, so the f-string SQL built with it is injection-safe."""
    return f"{quote_identifier(dataset)}.{quote_identifier(table)}"


def _insert_slot(f: Field) -> str:
    if standard_type(f["type"]) == "GEOGRAPHY" and f.get("mode") != "REPEATED":
        return "bq_geog_from_string(?)"
    return f"CAST(? AS {duckdb_type(f)})"


def _coerce_rows(
    rows: Sequence[Any], schema: list[Field], ignore_unknown: bool
) -> tuple[list[list[Any]], dict[int, str]]:
    known = {f["name"] for f in schema}
    values: list[list[Any]] = []
    errors: dict[int, str] = {}
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, Mapping):
                raise ValueError("a row must be a JSON object")
            unknown = sorted(set(row) - known)
            if unknown and not ignore_unknown:
                raise ValueError(f"no such field: {unknown[0]}.")
            coerced = []
            for f in schema:
                value = coerce_json_value(row.get(f["name"]), f)
                if value is None and f.get("mode") == "REQUIRED":
                    raise ValueError(f"Missing required field: {f['name']}.")
                coerced.append(value)
            values.append(coerced)
        except ValueError as exc:
            errors[index] = str(exc)
            values.append([])
    return values, errors


def _bind(
    statement: Statement, params: Mapping[str, Any] | Sequence[Any] | None, positional: list[Any]
) -> dict[str, Any] | list[Any] | None:
    """The parameters one statement uses: named ones picked by name, positional ones taken in order."""
    if statement.named_params:
        if not isinstance(params, Mapping):
            raise WarehouseError(
                f"Query parameter '{statement.named_params[0]}' not found: the query uses named "
                "parameters, pass a dict"
            )
        missing = [n for n in statement.named_params if n not in params]
        if missing:
            raise WarehouseError(f"Query parameter '{missing[0]}' not found")
        if statement.positional_params:
            raise WarehouseError("Named and positional query parameters cannot be mixed")
        return {n: params[n] for n in statement.named_params}
    if statement.positional_params:
        if len(positional) < statement.positional_params:
            raise WarehouseError(
                f"The query uses {statement.positional_params} positional parameter(s) (?) but "
                f"{len(positional)} were given"
            )
        taken = positional[: statement.positional_params]
        del positional[: statement.positional_params]
        return taken
    return None


def get_warehouse(state: EmulatorState) -> Warehouse:
    """The emulator's warehouse, created on first use."""
    return state.extension("warehouse", Warehouse)
