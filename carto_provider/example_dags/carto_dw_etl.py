"""A daily ETL in the CARTO Data Warehouse: create a table, load rows, run a spatial aggregation, check it.

Every task gets its BigQuery client from ``CartoAuthHook().get_carto_dw_client()``: the client's DW
token refreshes itself, so a long task never fails on an expired token, and no token goes to XCom
(only table ids and small results do). Run it offline with ``make demo``, or against your account
through the ``carto_default`` connection.
"""

from __future__ import annotations

from typing import Any

import pendulum

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2.x
    from airflow.decorators import dag, task  # type: ignore[no-redef]

from carto_provider.hooks.carto import CartoAuthHook

DATASET = "shared"
TABLE = "airflow_example_stores"
#: (city, city centre longitude, latitude): the aggregation counts the stores within RADIUS_M of it.
CITIES = {"Madrid": (-3.7038, 40.4168), "Barcelona": (2.1734, 41.3851), "Valencia": (-0.3763, 39.4699)}
RADIUS_M = 5000
#: Sample stores: (id, city, longitude, latitude, revenue). Offsets of ~0.01 degree are about 1 km from
#: the centre, ~0.2 degree about 20 km.
STORES = [
    (1, "Madrid", -3.6938, 40.4168, 1200.0),
    (2, "Madrid", -3.7138, 40.4268, 800.0),
    (3, "Madrid", -3.5038, 40.5168, 450.0),
    (4, "Barcelona", 2.1834, 41.3851, 2000.0),
    (5, "Barcelona", 2.3734, 41.5851, 300.0),
    (6, "Valencia", -0.3663, 39.4699, 950.0),
]
SCHEMA = [
    ("store_id", "INT64", "REQUIRED"),
    ("city", "STRING", "REQUIRED"),
    ("location", "GEOGRAPHY", "NULLABLE"),
    ("revenue", "FLOAT64", "NULLABLE"),
]


def expected_summary() -> dict[str, dict[str, Any]]:
    """What the aggregation must return, computed from :data:`STORES` without SQL."""
    summary: dict[str, dict[str, Any]] = {}
    for _, city, lng, lat, revenue in STORES:
        row = summary.setdefault(city, {"stores": 0, "revenue": 0.0, "near_centre": 0})
        row["stores"] += 1
        row["revenue"] += revenue
        centre_lng, centre_lat = CITIES[city]
        row["near_centre"] += abs(lng - centre_lng) < 0.05 and abs(lat - centre_lat) < 0.05
    return summary


@dag(
    dag_id="carto_dw_etl",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["carto", "example", "carto-dw"],
)
def carto_dw_etl() -> None:
    @task
    def create_table() -> str:
        """Create the table (kept between runs) and return its id."""
        from google.cloud import bigquery

        client = CartoAuthHook().get_carto_dw_client()
        table_id = f"{client.project}.{DATASET}.{TABLE}"
        schema = [bigquery.SchemaField(name, kind, mode=mode) for name, kind, mode in SCHEMA]
        client.create_table(bigquery.Table(table_id, schema=schema), exists_ok=True)
        return table_id

    @task
    def load_rows(table_id: str) -> int:
        """Replace the table's rows with today's extract (a rerun loads the same rows again)."""
        from google.cloud import bigquery

        client = CartoAuthHook().get_carto_dw_client()
        rows = [
            {"store_id": i, "city": city, "location": f"POINT({lng} {lat})", "revenue": revenue}
            for i, city, lng, lat, revenue in STORES
        ]
        config = bigquery.LoadJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
        job = client.load_table_from_json(rows, table_id, job_config=config)
        job.result()
        return int(job.output_rows or 0)

    @task
    def aggregate(table_id: str, loaded: int) -> list[dict[str, Any]]:
        """Per city: stores, revenue, stores within RADIUS_M of the centre, and the stores' centroid."""
        from google.cloud import bigquery

        client = CartoAuthHook().get_carto_dw_client()
        # Values travel as query parameters; only the table id (not parametrisable) is in the text.
        sql = f"""
            SELECT s.city,
                   COUNT(*) AS stores,
                   SUM(s.revenue) AS revenue,
                   COUNTIF(ST_DWITHIN(s.location, ST_GEOGPOINT(c.lng, c.lat), @radius)) AS near_centre,
                   ST_ASTEXT(ST_CENTROID(ST_UNION_AGG(s.location))) AS centroid
            FROM `{table_id}` AS s JOIN UNNEST(@centres) AS c ON s.city = c.city
            GROUP BY s.city
            ORDER BY s.city
        """  # noqa: S608
        centres = [
            bigquery.StructQueryParameter(
                None,
                bigquery.ScalarQueryParameter("city", "STRING", city),
                bigquery.ScalarQueryParameter("lng", "FLOAT64", lng),
                bigquery.ScalarQueryParameter("lat", "FLOAT64", lat),
            )
            for city, (lng, lat) in CITIES.items()
        ]
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("radius", "FLOAT64", RADIUS_M),
                bigquery.ArrayQueryParameter("centres", "STRUCT", centres),
            ]
        )
        rows = client.query(sql, job_config=config).result()
        print(f"Aggregated {loaded} loaded rows")
        return [dict(row.items()) for row in rows]

    @task
    def check(summary: list[dict[str, Any]]) -> None:
        """Fail the run when the aggregation disagrees with the rows loaded."""
        expected = expected_summary()
        got = {
            row["city"]: {
                "stores": row["stores"],
                "revenue": row["revenue"],
                "near_centre": row["near_centre"],
            }
            for row in summary
        }
        if got != expected:
            raise ValueError(f"The CARTO DW aggregation is wrong: expected {expected}, got {got}")
        for row in summary:
            print(f"{row['city']}: {row['stores']} stores, centroid {row['centroid']}")

    table_id = create_table()
    check(aggregate(table_id, load_rows(table_id)))


dag = carto_dw_etl()
