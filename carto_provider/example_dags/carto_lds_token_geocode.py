"""Mint an LDS-enabled API access token, geocode a table with CARTO's Analytics Toolbox as a SQL job,
then revoke the token.

    stores ──> mint_lds_token ──> geocode_stores ──> geocoded ──> revoke_lds_token

The Analytics Toolbox LDS procedures (``GEOCODE_TABLE``, isolines, routing) take "an API Access Token
that is allowed to use the LDS API" (CARTO docs) as an argument; CARTO's Tokens API mints one with an
OAuth (M2M) connection. The token lives in the Airflow Variable ``carto_lds_token`` (masked: its key
contains ``token``), never in XCom, and is revoked at the end whatever happened.

Offline (``make demo``), ``carto_default`` is the CARTO emulator: it mints tokens with grants and
geocodes against a small gazetteer. With your account: set the params ``dataset`` and ``toolbox`` (e.g.
``carto-un.carto`` for BigQuery US).
"""

from __future__ import annotations

import datetime as dt

import pendulum

try:  # Airflow 3
    from airflow.sdk import dag
except ImportError:  # Airflow 2.x
    from airflow.decorators import dag  # type: ignore[no-redef]

from carto_provider.operators.sql import CartoQueryOperator, CartoSQLOperator
from carto_provider.operators.tokens import CartoCreateTokenOperator, CartoRevokeTokenOperator

TABLE = "{{ params.dataset }}.stores_to_geocode"
STORES = [
    (1, "Gran Via 1, Madrid"),
    (2, "Passeig de Gracia 43, Barcelona"),
    (3, "Calle Colon 1, Valencia"),
    (4, "Nowhere Street 0, Atlantis"),
]


@dag(
    dag_id="carto_lds_token_geocode",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"carto_conn_id": "carto_default"},
    params={"dataset": "carto-dw-ac-emulator.shared", "toolbox": "carto-un.carto"},
    tags=["carto", "example", "lds"],
)
def carto_lds_token_geocode() -> None:
    stores = CartoSQLOperator(
        task_id="stores",
        sql=f"CREATE OR REPLACE TABLE `{TABLE}` AS "
        + " UNION ALL ".join(f"SELECT {i} AS id, '{a}' AS address" for i, a in STORES),
    )
    mint = CartoCreateTokenOperator(
        task_id="mint_lds_token",
        grants=[("carto_dw", "*")],
        allowed_apis=["lds"],
        expiration=dt.timedelta(hours=2),
        variable_key="carto_lds_token",
    )
    geocode = CartoSQLOperator(
        task_id="geocode_stores",
        sql="CALL `{{ params.toolbox }}.GEOCODE_TABLE`(@api_base_url, @api_access_token, @input_table, "
        "'address', 'geom', 'ES', NULL)",
        query_parameters={
            "api_base_url": "{{ conn.carto_default.host }}",
            "api_access_token": "{{ var.value.carto_lds_token }}",
            "input_table": TABLE,
        },
    )
    geocoded = CartoQueryOperator(
        task_id="geocoded",
        sql=f"SELECT id, address, ST_Y(geom) AS latitude, ST_X(geom) AS longitude FROM `{TABLE}` "  # noqa: S608
        "ORDER BY id",
        max_rows=100,
    )
    revoke = CartoRevokeTokenOperator(
        task_id="revoke_lds_token",
        variable_key="carto_lds_token",
        delete_variable=True,
        trigger_rule="all_done",
    )
    stores >> mint >> geocode >> geocoded >> revoke


dag = carto_lds_token_geocode()
