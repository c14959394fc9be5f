"""BigQuery SQL to DuckDB SQL for the emulator's warehouse (sqlglot, dialect ``bigquery`` -> ``duckdb``).

Beyond sqlglot's dialect translation this module

* maps names: ```project.dataset.table``` becomes ``"dataset"."table"`` (a dataset is a DuckDB schema;
  every project shares the one database), ``CREATE SCHEMA `project.dataset``` creates the schema;
* maps BigQuery's ``ST_*`` geography functions onto DuckDB's spatial extension, through the macros in
  :data:`SPATIAL_MACROS` where BigQuery measures on the sphere (``ST_DISTANCE``, ``ST_AREA``...);
* names unnamed result columns ``f0_``, ``f1_``... like BigQuery;
* drops table options that do not change results (``PARTITION BY``, ``CLUSTER BY``, ``OPTIONS``);
* refuses, with a message naming the feature, what the emulator cannot honour (scripting, ML, UDFs,
  time travel, ``INFORMATION_SCHEMA``, ``EXPORT``/``LOAD DATA``, geography functions without a
  DuckDB equivalent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

#: BigQuery geography functions and the DuckDB function or macro serving each. Others are refused.
SPATIAL_FUNCTIONS: dict[str, str] = {
    "ST_GEOGPOINT": "ST_Point",
    "ST_GEOGFROMTEXT": "ST_GeomFromText",
    "ST_GEOGFROMGEOJSON": "ST_GeomFromGeoJSON",
    "ST_GEOGFROMWKB": "ST_GeomFromWKB",
    "ST_GEOGFROM": "bq_geog_from_string",
    "ST_ASTEXT": "bq_st_astext",
    "ST_ASBINARY": "ST_AsWKB",
    "ST_ASGEOJSON": "bq_st_asgeojson",
    "ST_GEOMETRYTYPE": "bq_st_geometrytype",
    "ST_X": "ST_X",
    "ST_Y": "ST_Y",
    "ST_CENTROID": "ST_Centroid",
    "ST_CONTAINS": "ST_Contains",
    "ST_COVERS": "ST_Covers",
    "ST_COVEREDBY": "ST_CoveredBy",
    "ST_INTERSECTS": "ST_Intersects",
    "ST_WITHIN": "ST_Within",
    "ST_TOUCHES": "ST_Touches",
    "ST_DISJOINT": "ST_Disjoint",
    "ST_EQUALS": "ST_Equals",
    "ST_INTERSECTION": "ST_Intersection",
    "ST_UNION": "ST_Union",
    "ST_UNION_AGG": "ST_Union_Agg",
    "ST_DIFFERENCE": "ST_Difference",
    "ST_CONVEXHULL": "ST_ConvexHull",
    "ST_BOUNDARY": "ST_Boundary",
    "ST_CLOSESTPOINT": "ST_ClosestPoint",
    "ST_MAKELINE": "ST_MakeLine",
    "ST_MAKEPOLYGON": "ST_MakePolygon",
    "ST_STARTPOINT": "ST_StartPoint",
    "ST_ENDPOINT": "ST_EndPoint",
    "ST_POINTN": "ST_PointN",
    "ST_NUMPOINTS": "ST_NPoints",
    "ST_NPOINTS": "ST_NPoints",
    "ST_NUMGEOMETRIES": "ST_NumGeometries",
    "ST_ISEMPTY": "ST_IsEmpty",
    "ST_ISCLOSED": "ST_IsClosed",
    "ST_DIMENSION": "ST_Dimension",
    "ST_DISTANCE": "bq_st_distance",
    "ST_DWITHIN": "bq_st_dwithin",
    "ST_AREA": "bq_st_area",
    "ST_LENGTH": "bq_st_length",
    "ST_PERIMETER": "bq_st_perimeter",
}

#: DuckDB macros giving BigQuery's geography semantics. DuckDB's spheroid/sphere functions read
#: (latitude, longitude), BigQuery geographies are (longitude, latitude): hence the flips.
SPATIAL_MACROS: tuple[str, ...] = (
    "CREATE OR REPLACE MACRO bq_st_distance(a, b) AS ST_Distance_Sphere("
    "ST_FlipCoordinates(ST_ClosestPoint(a, b)), ST_FlipCoordinates(ST_ClosestPoint(b, a)))",
    "CREATE OR REPLACE MACRO bq_st_dwithin(a, b, meters) AS bq_st_distance(a, b) <= meters",
    "CREATE OR REPLACE MACRO bq_st_area(g) AS ST_Area_Spheroid(ST_FlipCoordinates(g))",
    "CREATE OR REPLACE MACRO bq_st_length(g) AS ST_Length_Spheroid(ST_FlipCoordinates(g))",
    "CREATE OR REPLACE MACRO bq_st_perimeter(g) AS ST_Perimeter_Spheroid(ST_FlipCoordinates(g))",
    # BigQuery writes WKT without a space before the parenthesis: POINT(1 2), DuckDB POINT (1 2).
    "CREATE OR REPLACE MACRO bq_st_astext(g) AS regexp_replace(ST_AsText(g), '([A-Z]) [(]', '\\1(', 'g')",
    "CREATE OR REPLACE MACRO bq_st_asgeojson(g) AS CAST(ST_AsGeoJSON(g) AS VARCHAR)",
    "CREATE OR REPLACE MACRO bq_geog_from_string(s) AS CASE WHEN s IS NULL THEN NULL "
    "WHEN ltrim(s) LIKE '{%' THEN ST_GeomFromGeoJSON(s) ELSE ST_GeomFromText(s) END",
    "CREATE OR REPLACE MACRO bq_st_geometrytype(g) AS CASE CAST(ST_GeometryType(g) AS VARCHAR) "
    "WHEN 'POINT' THEN 'ST_Point' WHEN 'LINESTRING' THEN 'ST_LineString' WHEN 'POLYGON' THEN 'ST_Polygon' "
    "WHEN 'MULTIPOINT' THEN 'ST_MultiPoint' WHEN 'MULTILINESTRING' THEN 'ST_MultiLineString' "
    "WHEN 'MULTIPOLYGON' THEN 'ST_MultiPolygon' ELSE 'ST_GeometryCollection' END",
)

# CREATE kinds refused by name; materialized/external tables are refused by their property, and
# statements sqlglot does not parse (CREATE SNAPSHOT TABLE, CALL, IF...) as unparsed commands.
_REFUSED_CREATE_KINDS = {
    "MODEL": "CREATE MODEL (BigQuery ML)",
    "FUNCTION": "CREATE FUNCTION (user-defined functions)",
    "PROCEDURE": "CREATE PROCEDURE",
}


#: Table properties that change storage, not results: dropped. ``Property`` is ``OPTIONS(...)``.
_STORAGE_OPTIONS = {"PartitionedByProperty", "ClusterProperty", "ClusteredByProperty", "Property"}


_REFUSED_PROPERTIES = {
    "MaterializedProperty": "CREATE MATERIALIZED VIEW",
    "ExternalProperty": "CREATE EXTERNAL TABLE",
    "LanguageProperty": "JavaScript user-defined functions",
}


class SQLTranslationError(Exception):
    """BigQuery SQL the emulator cannot run; ``reason`` is BigQuery's error reason."""

    def __init__(self, message: str, reason: str = "invalidQuery") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Statement:
    """One translated statement."""

    sql: str  # DuckDB SQL
    statement_type: str  # BigQuery's statistics.query.statementType: SELECT, INSERT, CREATE_TABLE...
    is_query: bool  # returns rows
    named_params: tuple[str, ...] = ()  # @names used, in order of first use
    positional_params: int = 0  # how many ? it uses


def unsupported(feature: str) -> SQLTranslationError:
    """The error for a BigQuery feature the emulator refuses."""
    return SQLTranslationError(f"Unsupported by the CARTO emulator: {feature}", "invalidQuery")


def translate(sql: str) -> list[Statement]:
    """The DuckDB statements of a BigQuery query (several for a multi-statement query)."""
    import sqlglot
    from sqlglot import errors

    # sqlglot warns when it falls back to an opaque Command; we refuse those with a clear error.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    try:
        trees = [tree for tree in sqlglot.parse(sql, read="bigquery") if tree is not None]
    except errors.ParseError as exc:
        raise SQLTranslationError(f"Syntax error: {_first_error(exc)}") from None
    if not trees:
        raise SQLTranslationError("Syntax error: the query is empty")
    return [_translate_one(tree) for tree in trees]


def _first_error(exc: Any) -> str:
    details = getattr(exc, "errors", None) or []
    if details:
        first = details[0]
        return f"{first.get('description')} at [{first.get('line')}:{first.get('col')}]"
    return str(exc).splitlines()[0]


def _translate_one(tree: Any) -> Statement:
    from sqlglot import ErrorLevel, errors, exp

    _refuse_unsupported(tree)
    tree = tree.transform(_rewrite_node)
    _rewrite_spatial_functions(tree)
    if isinstance(tree, exp.Query):
        _name_anonymous_columns(tree)
    try:
        duck = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except errors.UnsupportedError as exc:
        raise unsupported(str(exc).splitlines()[0]) from None
    named: dict[str, None] = {p.name: None for p in tree.find_all(exp.Parameter)}
    positional = sum(1 for _ in tree.find_all(exp.Placeholder))
    return Statement(
        sql=duck,
        statement_type=statement_type(tree),
        is_query=isinstance(tree, exp.Query),
        named_params=tuple(named),
        positional_params=positional,
    )


def statement_type(tree: Any) -> str:
    """BigQuery's ``statementType`` of a parsed statement."""
    from sqlglot import exp

    if isinstance(tree, exp.Query):
        return "SELECT"
    kind = str(tree.args.get("kind") or "").upper().replace(" ", "_")
    if isinstance(tree, exp.Create):
        if kind == "TABLE" and tree.expression is not None:
            return "CREATE_TABLE_AS_SELECT"
        return f"CREATE_{kind}" if kind else "CREATE"
    if isinstance(tree, exp.Drop):
        return f"DROP_{kind}" if kind else "DROP"
    named = {
        exp.Insert: "INSERT",
        exp.Update: "UPDATE",
        exp.Delete: "DELETE",
        exp.Merge: "MERGE",
        exp.TruncateTable: "TRUNCATE_TABLE",
        exp.Alter: "ALTER_TABLE",
    }
    for cls, name in named.items():
        if isinstance(tree, cls):
            return name
    return type(tree).__name__.upper()


def _refuse_unsupported(tree: Any) -> None:
    from sqlglot import exp

    if isinstance(tree, exp.Command):
        raise unsupported(f"{_leading_keywords(tree)} statements")
    if isinstance(tree, (exp.Declare, exp.Set, exp.EndStatement)):
        raise unsupported("BigQuery scripting (DECLARE, SET, BEGIN...END, IF, LOOP)")
    if isinstance(tree, (exp.Transaction, exp.Commit, exp.Rollback)):
        raise unsupported("transactions (BEGIN TRANSACTION, COMMIT, ROLLBACK)")
    if isinstance(tree, (exp.Copy, exp.Pragma)):
        raise unsupported(f"{type(tree).__name__.upper()} (not BigQuery SQL)")
    if isinstance(tree, exp.Export):
        raise unsupported("EXPORT DATA")
    if isinstance(tree, exp.LoadData):
        raise unsupported("LOAD DATA (use a load job)")
    if isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind") or "").upper()
        if kind in _REFUSED_CREATE_KINDS:
            raise unsupported(_REFUSED_CREATE_KINDS[kind])
        for prop in tree.find_all(exp.Property):
            if type(prop).__name__ in _REFUSED_PROPERTIES:
                raise unsupported(_REFUSED_PROPERTIES[type(prop).__name__])
    if tree.find(exp.Version) is not None:
        raise unsupported("FOR SYSTEM_TIME AS OF (time travel)")
    for table in tree.find_all(exp.Table):
        if any(part.upper() == "INFORMATION_SCHEMA" for part in _name_parts(table)):
            raise unsupported("INFORMATION_SCHEMA views")
    for func in tree.find_all(exp.Func):
        name = function_name(func)
        if name.startswith("ML.") or isinstance(func, exp.Predict):
            raise unsupported(f"BigQuery ML function {name}")
        if name.startswith("ST_") and name not in SPATIAL_FUNCTIONS:
            raise unsupported(f"geography function {name}")


def _leading_keywords(command: Any) -> str:
    """``CALL``, ``IF``, ``CREATE SNAPSHOT TABLE``...: the keywords an unparsed statement starts with."""
    words = str(command.sql(dialect="bigquery")).split()
    limit = 3 if words and words[0].upper() == "CREATE" else 1
    head = []
    for word in words[:limit]:
        if not word.isalpha():
            break
        head.append(word.upper())
    return " ".join(head) or "these"


def function_name(func: Any) -> str:
    """A function call's BigQuery name, upper case (``ST_GEOGPOINT``, ``ML.PREDICT``...)."""
    from sqlglot import exp

    if isinstance(func, exp.Anonymous):
        return str(func.name).upper()
    return str(func.sql(dialect="bigquery").split("(", 1)[0]).upper()


def _name_parts(table: Any) -> list[str]:
    parts: list[str] = []
    for key in ("catalog", "db", "this"):
        node = table.args.get(key)
        name = str(getattr(node, "name", None) or "")
        if name:
            parts.extend(name.split("."))
    return parts


def _rewrite_node(node: Any) -> Any:
    from sqlglot import exp

    if isinstance(node, exp.Table):
        return _rewrite_table(node)
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.GEOGRAPHY:
        return exp.DataType.build("GEOMETRY", dialect="duckdb")
    if isinstance(node, exp.Create):
        _drop_storage_options(node)
    return node


def _rewrite_spatial_functions(tree: Any) -> None:
    """Point BigQuery's ``ST_*`` calls at their DuckDB function or macro (nested calls included)."""
    from sqlglot import exp

    for func in list(tree.find_all(exp.Func)):
        target = SPATIAL_FUNCTIONS.get(function_name(func))
        if target is None:
            continue
        args = [a for a in func.args.values() if isinstance(a, exp.Expression)]
        args += [a for v in func.args.values() if isinstance(v, list) for a in v]
        func.replace(exp.Anonymous(this=target, expressions=args))


def _rewrite_table(table: Any) -> Any:
    """``project.dataset.table`` -> ``dataset.table``; a schema (dataset) name keeps its last part."""
    from sqlglot import exp

    parent = table.parent
    is_schema = (
        isinstance(parent, (exp.Create, exp.Drop)) and str(parent.args.get("kind")).upper() == "SCHEMA"
    )
    parts = _name_parts(table)
    if is_schema and parts:
        return exp.Table(db=exp.to_identifier(parts[-1], quoted=True))
    return _table(parts, table) if len(parts) >= 2 else table


def _table(parts: list[str], original: Any) -> Any:
    from sqlglot import exp

    new = exp.Table(
        this=exp.to_identifier(parts[-1], quoted=True), db=exp.to_identifier(parts[-2], quoted=True)
    )
    for key, value in original.args.items():
        if key not in ("this", "db", "catalog") and value is not None:
            new.set(key, value)
    return new


def _drop_storage_options(create: Any) -> None:
    properties = create.args.get("properties")
    if properties is None:
        return
    # Exact classes: every sqlglot property subclasses Property, and TEMP must stay.
    keep = [p for p in properties.expressions if type(p).__name__ not in _STORAGE_OPTIONS]
    if keep:
        properties.set("expressions", keep)
    else:
        create.set("properties", None)


def _name_anonymous_columns(query: Any) -> None:
    from sqlglot import exp

    select = query if isinstance(query, exp.Select) else query.find(exp.Select)
    if select is None:
        return
    anonymous = 0
    for index, projection in enumerate(list(select.expressions)):
        if isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
            continue
        select.expressions[index] = exp.alias_(projection, f"f{anonymous}_")
        anonymous += 1
