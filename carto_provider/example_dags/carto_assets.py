"""Data-aware scheduling on CARTO: an import updates the asset of its destination table, and a second
DAG, scheduled on that asset, runs when it does.

``CartoImportOperator`` declares its destination as an outlet by default:
``carto://carto_dw/<project>.<dataset>.<table>`` (the ``carto`` asset URI scheme of this provider).
With your CARTO account, set ``TABLE`` to a table of your Data Warehouse and ``SOURCE_URL`` to your file.
``tests/integration/test_assets.py`` runs the import and shows the second DAG queued by it.
"""

from __future__ import annotations

import pendulum

from carto_provider.assets import create_asset
from carto_provider.operators.imports import CartoImportOperator
from carto_provider.operators.sql import CartoQueryOperator

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow.models import DAG  # type: ignore[no-redef,assignment]

#: The table the import writes (fully qualified: the asset URI must not be templated).
TABLE = "carto-dw-ac-emulator.shared.asset_stores"
#: A GeoJSON file of stores. The emulator behind ``carto_default`` serves this one; use your own URL.
SOURCE_URL = "{{ conn.carto_default.host }}/emulator/files/stores.geojson"
STORES = create_asset(table=TABLE)  # carto://carto_dw/carto-dw-ac-emulator.shared.asset_stores

with DAG(
    dag_id="carto_assets_import",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["carto", "example", "assets"],
) as import_dag:
    CartoImportOperator(task_id="import_stores", url=SOURCE_URL, destination=TABLE, overwrite=True)

with DAG(
    dag_id="carto_assets_consumer",
    schedule=[STORES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["carto", "example", "assets"],
) as consumer_dag:
    CartoQueryOperator(task_id="count_stores", sql=f"SELECT COUNT(*) AS stores FROM `{TABLE}`")  # noqa: S608
