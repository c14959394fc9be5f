"""The emulator's CARTO Data Warehouse through the real google-cloud-bigquery client over loopback HTTP.

A parametrised table of BigQuery SQL (DDL, DML, SELECT with STRUCT/ARRAY, ST_ functions) runs with
the results BigQuery gives; unsupported SQL gets a BigQuery-shaped error naming the feature; the REST
subset the client uses (jobs, uploads, tabledata, datasets, tables) behaves like BigQuery.
"""

# ruff: noqa: S608 - the SQL under test is built from the test's own constants

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from google.api_core import exceptions as google_exceptions
from google.cloud import bigquery

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.testing.emulator import CartoEmulator
from carto_provider.testing.warehouse import WarehouseError, get_warehouse

DATASET = "sqltest"
UTC = dt.timezone.utc


def sphere_distance(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Great-circle metres on BigQuery's sphere (radius 6371008.8 m): the oracle for ST_DISTANCE."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


@pytest.fixture(scope="module")
def emulator() -> Iterator[CartoEmulator]:
    with CartoEmulator() as carto:
        yield carto


@pytest.fixture(scope="module")
def client(emulator: CartoEmulator, tmp_path_factory: pytest.TempPathFactory) -> bigquery.Client:
    auth = CartoAuth.from_values(
        emulator.url,
        emulator.client_id,
        emulator.client_secret,
        auth_url=emulator.url,
        cache_filepath=tmp_path_factory.mktemp("cache") / "token.json",
        bigquery_api_endpoint=emulator.url,
    )
    client = auth.get_carto_dw_client()
    client.create_dataset(DATASET)
    schema = [
        bigquery.SchemaField("id", "INT64", mode="REQUIRED"),
        bigquery.SchemaField("name", "STRING"),
        bigquery.SchemaField("price", "NUMERIC"),
        bigquery.SchemaField("tags", "STRING", mode="REPEATED"),
        bigquery.SchemaField(
            "dims",
            "RECORD",
            fields=[bigquery.SchemaField("w", "FLOAT64"), bigquery.SchemaField("h", "FLOAT64")],
        ),
        bigquery.SchemaField("geom", "GEOGRAPHY"),
        bigquery.SchemaField("created", "TIMESTAMP"),
    ]
    client.create_table(bigquery.Table(f"{client.project}.{DATASET}.items", schema=schema))
    errors = client.insert_rows_json(
        f"{client.project}.{DATASET}.items",
        [
            {
                "id": 1,
                "name": "lamp",
                "price": "12.50",
                "tags": ["home", "light"],
                "dims": {"w": 0.5, "h": 1.5},
                "geom": "POINT(-3.7 40.42)",
                "created": "2024-03-05T10:00:00Z",
            },
            {
                "id": 2,
                "name": "desk",
                "price": 99,
                "tags": ["office"],
                "dims": {"w": 2.0, "h": 1.0},
                "geom": "POINT(2.17 41.38)",
                "created": 1709632800,
            },
            {"id": 3, "name": "chair", "price": "45.25", "tags": [], "geom": None},
        ],
    )
    assert errors == []
    return client


def rows_of(client: bigquery.Client, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    config = bigquery.QueryJobConfig(query_parameters=params or [])
    return [dict(row.items()) for row in client.query(sql, job_config=config).result()]


ITEMS = f"`{DATASET}.items`"

SQL_CASES: list[tuple[str, str, list[Any] | None, list[dict[str, Any]]]] = [
    # ---------------------------------------------------------------- DDL
    (
        "create_insert_select",
        f"CREATE TABLE {DATASET}.ddl1 (a INT64, b STRING); INSERT INTO {DATASET}.ddl1 (a, b) VALUES (1, 'x'), "
        f"(2, 'y'); SELECT a, b FROM {DATASET}.ddl1 ORDER BY a",
        None,
        [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
    ),
    (
        "create_table_as_select_with_options",
        f"CREATE TABLE `carto-dw-ac-emulator.{DATASET}.ctas` PARTITION BY DATE(created) CLUSTER BY id "
        f"OPTIONS(description='copy') AS SELECT id, price * 2 AS double_price, created FROM {ITEMS} "
        f"WHERE id <= 2; SELECT id, double_price FROM {DATASET}.ctas ORDER BY id",
        None,
        [{"id": 1, "double_price": Decimal("25")}, {"id": 2, "double_price": Decimal("198")}],
    ),
    (
        "create_or_replace_and_alter",
        f"CREATE OR REPLACE TABLE {DATASET}.alt (a INT64); ALTER TABLE {DATASET}.alt ADD COLUMN b STRING; "
        f"INSERT INTO {DATASET}.alt (a, b) VALUES (7, 'z'); SELECT * FROM {DATASET}.alt",
        None,
        [{"a": 7, "b": "z"}],
    ),
    (
        "create_view",
        f"CREATE VIEW {DATASET}.cheap AS SELECT name FROM {ITEMS} WHERE price < 50; "
        f"SELECT name FROM {DATASET}.cheap ORDER BY name",
        None,
        [{"name": "chair"}, {"name": "lamp"}],
    ),
    # ---------------------------------------------------------------- DML
    (
        "update",
        f"CREATE TABLE {DATASET}.upd AS SELECT v FROM UNNEST([1, 2, 3]) AS v; "
        f"UPDATE {DATASET}.upd SET v = v * 10 WHERE v > 1; SELECT v FROM {DATASET}.upd ORDER BY v",
        None,
        [{"v": 1}, {"v": 20}, {"v": 30}],
    ),
    (
        "delete",
        f"CREATE TABLE {DATASET}.del AS SELECT v FROM UNNEST([1, 2, 3]) AS v; "
        f"DELETE FROM {DATASET}.del WHERE v >= 2; SELECT COUNT(*) AS n FROM {DATASET}.del",
        None,
        [{"n": 1}],
    ),
    (
        "merge",
        f"CREATE TABLE {DATASET}.tgt (id INT64, qty INT64); INSERT INTO {DATASET}.tgt VALUES (1, 10), (2, 20); "
        f"MERGE {DATASET}.tgt T USING (SELECT 2 AS id, 5 AS qty UNION ALL SELECT 3, 7) S ON T.id = S.id "
        "WHEN MATCHED THEN UPDATE SET qty = T.qty + S.qty WHEN NOT MATCHED THEN INSERT (id, qty) "
        f"VALUES (S.id, S.qty); SELECT id, qty FROM {DATASET}.tgt ORDER BY id",
        None,
        [{"id": 1, "qty": 10}, {"id": 2, "qty": 25}, {"id": 3, "qty": 7}],
    ),
    # ---------------------------------------------------------------- SELECT, STRUCT, ARRAY
    (
        "struct_literal",
        "SELECT STRUCT(1 AS a, 'x' AS b) AS s, 1 + 1, 'anon'",
        None,
        [{"s": {"a": 1, "b": "x"}, "f0_": 2, "f1_": "anon"}],
    ),
    ("struct_field", f"SELECT dims.w AS w FROM {ITEMS} WHERE id = 1", None, [{"w": 0.5}]),
    (
        "array_offset_and_length",
        f"SELECT ARRAY_LENGTH(tags) AS n, tags[OFFSET(0)] AS first, tags[SAFE_OFFSET(5)] AS none "
        f"FROM {ITEMS} WHERE id = 1",
        None,
        [{"n": 2, "first": "home", "none": None}],
    ),
    (
        "unnest_join",
        f"SELECT i.id, tag FROM {ITEMS} AS i, UNNEST(i.tags) AS tag ORDER BY i.id, tag",
        None,
        [{"id": 1, "tag": "home"}, {"id": 1, "tag": "light"}, {"id": 2, "tag": "office"}],
    ),
    (
        "array_and_string_agg",
        f"SELECT ARRAY_AGG(id ORDER BY id) AS ids, STRING_AGG(name, ',' ORDER BY name) AS names FROM {ITEMS}",
        None,
        [{"ids": [1, 2, 3], "names": "chair,desk,lamp"}],
    ),
    (
        "array_of_structs",
        "SELECT [STRUCT(1 AS k, 'a' AS v), STRUCT(2 AS k, 'b' AS v)] AS pairs",
        None,
        [{"pairs": [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}]}],
    ),
    (
        "window_qualify",
        f"SELECT name FROM {ITEMS} WHERE TRUE QUALIFY ROW_NUMBER() OVER (ORDER BY price DESC) = 1",
        None,
        [{"name": "desk"}],
    ),
    (
        "named_parameter",
        f"SELECT name FROM {ITEMS} WHERE price > @min ORDER BY id",
        [bigquery.ScalarQueryParameter("min", "NUMERIC", Decimal("20"))],
        [{"name": "desk"}, {"name": "chair"}],
    ),
    (
        "array_parameter",
        f"SELECT id FROM {ITEMS} WHERE id IN UNNEST(@ids) ORDER BY id",
        [bigquery.ArrayQueryParameter("ids", "INT64", [1, 3])],
        [{"id": 1}, {"id": 3}],
    ),
    (
        "positional_parameters",
        f"SELECT name FROM {ITEMS} WHERE id = ? OR name = ? ORDER BY id",
        [
            bigquery.ScalarQueryParameter(None, "INT64", 1),
            bigquery.ScalarQueryParameter(None, "STRING", "desk"),
        ],
        [{"name": "lamp"}, {"name": "desk"}],
    ),
    (
        "types_round_trip",
        f"SELECT price, created, DATE(created) AS day, TRUE AS yes, CAST(NULL AS STRING) AS nothing, "
        f"1.5 AS f FROM {ITEMS} WHERE id = 1",
        None,
        [
            {
                "price": Decimal("12.5"),
                "created": dt.datetime(2024, 3, 5, 10, tzinfo=UTC),
                "day": dt.date(2024, 3, 5),
                "yes": True,
                "nothing": None,
                "f": 1.5,
            }
        ],
    ),
    (
        "date_functions",
        "SELECT DATE_DIFF(DATE '2024-03-01', DATE '2024-01-01', DAY) AS days, "
        "FORMAT_DATE('%Y-%m', DATE '2024-03-05') AS ym, "
        "TIMESTAMP_TRUNC(TIMESTAMP '2024-03-05 10:11:12+00', DAY) AS midnight",
        None,
        [{"days": 60, "ym": "2024-03", "midnight": dt.datetime(2024, 3, 5, tzinfo=UTC)}],
    ),
    (
        "safe_functions",
        "SELECT SAFE_CAST('x' AS INT64) AS bad, SAFE_DIVIDE(1, 0) AS div, IFNULL(NULL, 3) AS fallback",
        None,
        [{"bad": None, "div": None, "fallback": 3}],
    ),
    # ---------------------------------------------------------------- ST_ functions
    (
        "st_geogpoint_astext",
        "SELECT ST_ASTEXT(ST_GEOGPOINT(-3.7, 40.4)) AS wkt, ST_GEOGPOINT(1, 2) AS g",
        None,
        [{"wkt": "POINT(-3.7 40.4)", "g": "POINT(1 2)"}],
    ),
    ("geography_column", f"SELECT geom FROM {ITEMS} WHERE id = 1", None, [{"geom": "POINT(-3.7 40.42)"}]),
    (
        "st_distance_on_the_sphere",
        f"SELECT ST_DISTANCE(a.geom, b.geom) AS metres FROM {ITEMS} a, {ITEMS} b WHERE a.id = 1 AND b.id = 2",
        None,
        [{"metres": pytest.approx(sphere_distance(-3.7, 40.42, 2.17, 41.38), rel=1e-4)}],
    ),
    (
        "st_dwithin_and_x_y",
        f"SELECT id, ST_X(geom) AS x, ST_Y(geom) AS y FROM {ITEMS} "
        "WHERE ST_DWITHIN(geom, ST_GEOGPOINT(-3.71, 40.42), 2000)",
        None,
        [{"id": 1, "x": -3.7, "y": 40.42}],
    ),
    (
        "st_area_of_a_degree_square",
        "SELECT ST_AREA(ST_GEOGFROMTEXT('POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))')) AS m2",
        None,
        # BigQuery measures on a sphere (1.2364e10 m2); DuckDB's spheroid differs by under 1 %.
        [{"m2": pytest.approx(1.2364e10, rel=1e-2)}],
    ),
    (
        "st_contains_intersects",
        "SELECT ST_CONTAINS(p, ST_GEOGPOINT(0.5, 0.5)) AS inside, ST_INTERSECTS(p, ST_GEOGPOINT(5, 5)) AS far "
        "FROM (SELECT ST_GEOGFROMTEXT('POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))') AS p)",
        None,
        [{"inside": True, "far": False}],
    ),
    (
        "st_union_agg_centroid",
        f"SELECT ST_X(c) AS x, ST_Y(c) AS y, n FROM (SELECT ST_CENTROID(ST_UNION_AGG(geom)) AS c, "
        f"ST_NUMPOINTS(ST_UNION_AGG(geom)) AS n FROM {ITEMS})",
        None,
        # BigQuery's centroid is spherical, DuckDB's planar: they agree to a few hundredths of a degree here.
        [{"x": pytest.approx(-0.765, abs=0.05), "y": pytest.approx(40.9, abs=0.1), "n": 2}],
    ),
    (
        "st_geogfromgeojson_length",
        "SELECT ST_GEOMETRYTYPE(l) AS kind, ST_LENGTH(l) AS metres FROM (SELECT ST_GEOGFROMGEOJSON("
        '\'{"type": "LineString", "coordinates": [[0, 0], [0, 1]]}\') AS l)',
        None,
        # One degree of latitude: 110.6 km on the WGS84 spheroid, 111.2 km on BigQuery's sphere.
        [{"kind": "ST_LineString", "metres": pytest.approx(111_195, rel=1e-2)}],
    ),
]


@pytest.mark.parametrize(
    ("sql", "params", "expected"), [c[1:] for c in SQL_CASES], ids=[c[0] for c in SQL_CASES]
)
def test_bigquery_sql_runs_with_bigquery_results(
    client: bigquery.Client, sql: str, params: list[Any] | None, expected: list[dict[str, Any]]
) -> None:
    assert rows_of(client, sql, params) == expected


REFUSED = [
    ("SELECT ST_BUFFER(ST_GEOGPOINT(0, 0), 10)", "geography function ST_BUFFER"),
    ("DECLARE x INT64 DEFAULT 1", "BigQuery scripting"),
    ("BEGIN SELECT 1; END", "BEGIN statements"),
    ("CREATE MODEL sqltest.m OPTIONS(model_type='linear_reg') AS SELECT 1 AS label", "CREATE MODEL"),
    ("SELECT * FROM ML.PREDICT(MODEL sqltest.m, (SELECT 1))", "BigQuery ML"),
    ("SELECT * FROM sqltest.items FOR SYSTEM_TIME AS OF CURRENT_TIMESTAMP()", "time travel"),
    ("SELECT * FROM sqltest.INFORMATION_SCHEMA.TABLES", "INFORMATION_SCHEMA"),
    ("EXPORT DATA OPTIONS(uri='gs://b/*.csv', format='CSV') AS SELECT 1", "EXPORT DATA"),
    ("CREATE TEMP FUNCTION f(x INT64) RETURNS INT64 LANGUAGE js AS 'return x'", "CREATE FUNCTION"),
    ("CALL sqltest.proc()", "CALL statements"),
    ("SET x = 1", "BigQuery scripting"),
    ("BEGIN TRANSACTION", "transactions"),
    ("CREATE MATERIALIZED VIEW sqltest.mv AS SELECT 1 AS a", "CREATE MATERIALIZED VIEW"),
    ("COPY sqltest.items TO 'items.csv'", "COPY (not BigQuery SQL)"),
]


@pytest.mark.parametrize(("sql", "named"), REFUSED, ids=[r[1] for r in REFUSED])
def test_unsupported_sql_gets_a_bigquery_error_naming_it(
    client: bigquery.Client, sql: str, named: str
) -> None:
    with pytest.raises(google_exceptions.BadRequest) as caught:
        client.query(sql).result()
    assert named in str(caught.value)
    assert caught.value.errors[0]["reason"] == "invalidQuery"


def test_sql_errors_have_bigquery_reasons(client: bigquery.Client) -> None:
    with pytest.raises(google_exceptions.NotFound, match="does not exist"):
        client.query_and_wait(f"SELECT * FROM {DATASET}.missing")
    with pytest.raises(google_exceptions.BadRequest, match="Syntax error"):
        client.query_and_wait("SELEC 1")
    with pytest.raises(google_exceptions.BadRequest, match="legacy SQL"):
        client.query("SELECT 1", job_config=bigquery.QueryJobConfig(use_legacy_sql=True)).result()


def test_query_and_wait_dml_counts_rows(client: bigquery.Client) -> None:
    client.query_and_wait(f"CREATE TABLE {DATASET}.counted (a INT64)")
    result = client.query_and_wait(f"INSERT INTO {DATASET}.counted (a) VALUES (1), (2), (3)")
    assert result.num_dml_affected_rows == 3
    job = client.query(f"DELETE FROM {DATASET}.counted WHERE a > 1")
    job.result()
    assert job.num_dml_affected_rows == 2
    assert job.statement_type == "DELETE"


def test_results_page_through_get_query_results(client: bigquery.Client, emulator: CartoEmulator) -> None:
    before = emulator.calls("GET /bigquery/v2/projects/*/queries/*")
    rows = client.query("SELECT x FROM UNNEST(GENERATE_ARRAY(1, 25)) AS x ORDER BY x").result(page_size=10)
    assert [row.x for row in rows] == list(range(1, 26))
    assert emulator.calls("GET /bigquery/v2/projects/*/queries/*") - before >= 3  # 3 pages of 10


def test_insert_rows_json_reports_bad_rows_like_bigquery(client: bigquery.Client) -> None:
    table = client.create_table(
        bigquery.Table(f"{client.project}.{DATASET}.stream", schema=[bigquery.SchemaField("n", "INT64")])
    )
    errors = client.insert_rows_json(table, [{"n": 1}, {"n": "not a number"}, {"other": 3}])
    assert [e["index"] for e in errors] == [1, 2, 0]
    assert [e["errors"][0]["reason"] for e in errors] == ["invalid", "invalid", "stopped"]
    assert "no such field: other" in errors[1]["errors"][0]["message"]
    assert client.get_table(table).num_rows == 0  # nothing inserted: the batch stopped
    errors = client.insert_rows_json(table, [{"n": 1}, {"n": "x"}], skip_invalid_rows=True)
    assert [e["index"] for e in errors] == [1]
    assert client.get_table(table).num_rows == 1


def test_load_table_from_json_autodetects_appends_and_truncates(client: bigquery.Client) -> None:
    table_id = f"{client.project}.{DATASET}.loaded"
    job = client.load_table_from_json([{"id": 1, "name": "a", "score": 1.5, "ok": True}], table_id)
    assert job.result().output_rows == 1
    schema = {f.name: f.field_type for f in client.get_table(table_id).schema}
    assert schema == {"id": "INTEGER", "name": "STRING", "score": "FLOAT", "ok": "BOOLEAN"}
    client.load_table_from_json([{"id": 2, "name": "b"}], table_id).result()
    assert client.get_table(table_id).num_rows == 2
    truncate = bigquery.LoadJobConfig(write_disposition="WRITE_TRUNCATE")
    client.load_table_from_json([{"id": 3, "name": "c"}], table_id, job_config=truncate).result()
    assert [row.id for row in client.list_rows(table_id)] == [3]


def test_failed_load_job_changes_nothing(client: bigquery.Client) -> None:
    table_id = f"{client.project}.{DATASET}.atomic"
    client.load_table_from_json([{"n": 1}], table_id).result()
    truncate = bigquery.LoadJobConfig(write_disposition="WRITE_TRUNCATE")
    job = client.load_table_from_json([{"n": 2}, {"n": "bad"}], table_id, job_config=truncate)
    with pytest.raises(google_exceptions.BadRequest, match="too many errors"):
        job.result()
    assert [row.n for row in client.list_rows(table_id)] == [1]


def test_resumable_upload_of_csv(client: bigquery.Client) -> None:
    config = bigquery.LoadJobConfig(
        source_format="CSV",
        skip_leading_rows=1,
        schema=[bigquery.SchemaField("code", "STRING"), bigquery.SchemaField("qty", "INT64")],
    )
    data = io.BytesIO(b"code,qty\n007,5\nabc,6\n")
    # size=None makes the client use a resumable upload (POST then PUT).
    job = client.load_table_from_file(
        data, f"{client.project}.{DATASET}.csvload", job_config=config, size=None
    )
    job.result()
    assert [dict(r.items()) for r in client.list_rows(f"{client.project}.{DATASET}.csvload")] == [
        {"code": "007", "qty": 5},
        {"code": "abc", "qty": 6},
    ]


def test_list_rows_pages_and_selects_fields(client: bigquery.Client) -> None:
    table = client.get_table(f"{client.project}.{DATASET}.items")
    rows = client.list_rows(table, selected_fields=[table.schema[1]], page_size=2)
    assert [row.name for row in rows] == ["lamp", "desk", "chair"]
    assert [row.id for row in client.list_rows(table, start_index=1, max_results=1)] == [2]


def test_datasets_and_tables_lifecycle(client: bigquery.Client) -> None:
    dataset = client.create_dataset(f"{client.project}.lifecycle")
    with pytest.raises(google_exceptions.Conflict):
        client.create_dataset(f"{client.project}.lifecycle")
    client.create_dataset(f"{client.project}.lifecycle", exists_ok=True)
    table = client.create_table(
        bigquery.Table(
            f"{client.project}.lifecycle.t", schema=[bigquery.SchemaField("a", "INT64", "REQUIRED")]
        )
    )
    assert table.schema[0].mode == "REQUIRED"
    assert [t.table_id for t in client.list_tables(dataset)] == ["t"]
    assert "lifecycle" in [d.dataset_id for d in client.list_datasets()]
    with pytest.raises(google_exceptions.BadRequest, match="still in use"):
        client.delete_dataset(dataset)
    client.delete_table(table)
    with pytest.raises(google_exceptions.NotFound):
        client.get_table(f"{client.project}.lifecycle.t")
    client.delete_table(f"{client.project}.lifecycle.t", not_found_ok=True)
    client.delete_dataset(dataset, delete_contents=True)
    with pytest.raises(google_exceptions.NotFound):
        client.get_dataset(f"{client.project}.lifecycle")


def test_cancel_stops_a_running_job(client: bigquery.Client, emulator: CartoEmulator) -> None:
    from carto_provider.testing.bigquery_jobs import bigquery_settings

    settings = bigquery_settings(emulator)
    settings.job_duration = 30.0
    try:
        job = client.query(f"CREATE TABLE {DATASET}.never AS SELECT 1 AS a")
        assert job.state == "RUNNING"
        job.cancel()
        with pytest.raises(google_exceptions.GoogleAPICallError, match="cancelled") as caught:
            job.result()
        assert caught.value.errors[0]["reason"] == "stopped"
    finally:
        settings.job_duration = 0.0
    assert client.get_table(f"{client.project}.{DATASET}.items")  # the emulator still serves
    with pytest.raises(google_exceptions.NotFound):
        client.get_table(f"{client.project}.{DATASET}.never")  # the cancelled job never ran


def test_requests_without_a_valid_dw_token_get_bigquerys_401(emulator: CartoEmulator) -> None:
    url = f"{emulator.url}/bigquery/v2/projects/p/datasets"
    api_token = CartoAuth.from_values(
        emulator.url, emulator.client_id, emulator.client_secret, auth_url=emulator.url, use_cache=False
    ).get_access_token()
    before = emulator.events("bigquery_unauthorized")
    # No token, an unknown one, and a CARTO API token (valid for CARTO, not a DW token).
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {api_token}"}):
        response = requests.get(url, headers=headers, timeout=10)
        assert response.status_code == 401
        body = response.json()["error"]
        assert body["status"] == "UNAUTHENTICATED" and body["errors"][0]["reason"] == "authError"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert emulator.events("bigquery_unauthorized") - before == 3


def test_warehouse_interface_for_other_routes(emulator: CartoEmulator) -> None:
    """The interface the CARTO SQL API routes use: BigQuery SQL, named or positional parameters."""
    warehouse = get_warehouse(emulator.state)
    named = warehouse.execute("SELECT @a + 1 AS x, @s AS s", {"a": 41, "s": "hi", "unused": 0})
    assert named.schema == [
        {"name": "x", "type": "INT64", "mode": "NULLABLE"},
        {"name": "s", "type": "STRING", "mode": "NULLABLE"},
    ]
    assert named.rows == [{"x": 42, "s": "hi"}]
    positional = warehouse.execute("SELECT ? * 2 AS y, ST_GEOGPOINT(?, ?) AS g", [21, 1.5, 2])
    assert positional.rows == [{"y": 42, "g": "POINT(1.5 2)"}]
    assert [f["type"] for f in positional.schema] == ["INT64", "GEOGRAPHY"]
    with pytest.raises(WarehouseError) as caught:
        warehouse.execute("SELECT @missing")
    assert caught.value.reason == "invalidQuery" and "missing" in str(caught.value)
    with pytest.raises(WarehouseError) as caught:
        warehouse.execute("SELECT * FROM nowhere.t")
    assert caught.value.reason == "notFound"
    assert warehouse.spatial, "duckdb-extension-spatial must load offline from its wheel"
    with pytest.raises(WarehouseError, match="disabled by config"):  # no reading the machine's files
        warehouse.execute("SELECT * FROM read_csv('/etc/hostname')")
    assert json.loads(warehouse.execute("SELECT ST_ASGEOJSON(ST_GEOGPOINT(1, 2)) AS j").rows[0]["j"]) == {
        "type": "Point",
        "coordinates": [1.0, 2.0],
    }
