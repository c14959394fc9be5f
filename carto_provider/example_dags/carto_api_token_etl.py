"""An ETL on any CARTO plan: an ``api_token`` connection (an API access token, no M2M client).

    quota ──> import_stores ──> geocode_cities ──> summary

The connection ``carto_api_token`` holds an API access token allowed to use ``sql``, ``imports`` and
``lds`` with a grant on ``carto_dw``; the token endpoint is never called. Offline (``make demo``) it is
a token the CARTO emulator issued.
"""

from __future__ import annotations

import pendulum

try:  # Airflow 3
    from airflow.sdk import dag
except ImportError:  # Airflow 2.x
    from airflow.decorators import dag  # type: ignore[no-redef]

from carto_provider.operators.imports import CartoImportOperator
from carto_provider.operators.lds import CartoBatchGeocodeOperator, CartoLDSQuotaCheckOperator
from carto_provider.operators.sql import CartoQueryOperator

CITIES = ["Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao"]


@dag(
    dag_id="carto_api_token_etl",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"carto_conn_id": "carto_api_token"},
    params={"dataset": "carto-dw-ac-emulator.shared"},
    tags=["carto", "example", "api_token"],
)
def carto_api_token_etl() -> None:
    quota = CartoLDSQuotaCheckOperator(task_id="quota", requests=len(CITIES))
    import_stores = CartoImportOperator(
        task_id="import_stores",
        url="{{ conn.carto_api_token.host }}/emulator/files/stores.geojson",
        destination="{{ params.dataset }}.aat_stores",
        overwrite=True,
        preview=True,
    )
    geocode = CartoBatchGeocodeOperator(
        task_id="geocode_cities",
        addresses=[f"{city}, Spain" for city in CITIES],
        country="ES",
        destination="{{ params.dataset }}.aat_cities",
        overwrite=True,
    )
    summary = CartoQueryOperator(
        task_id="summary",
        sql="SELECT (SELECT COUNT(*) FROM `{{ params.dataset }}.aat_stores`) AS stores, "
        "(SELECT COUNT(*) FROM `{{ params.dataset }}.aat_cities` WHERE latitude IS NOT NULL) AS cities",
    )
    quota >> import_stores >> geocode >> summary


dag = carto_api_token_etl()
