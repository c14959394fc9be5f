"""OpenLineage for CARTO: an import, a SQL job, a query and a common.sql statement, each reporting the
tables it read and wrote.

With ``apache-airflow-providers-openlineage`` installed and a transport configured (for example
``AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "file", "log_file_path": "/tmp/ol.jsonl", "append": true}'``),
every task's COMPLETE event names its inputs and outputs: the import's source file and destination
table, and the tables parsed from the SQL (namespace ``bigquery``, name ``project.dataset.table`` for
the CARTO Data Warehouse), with CARTO's job id as the ``externalQuery`` run facet. Without the
provider, the DAG runs the same and nothing is emitted.

With your CARTO account: set the param ``dataset`` (e.g. ``carto-dw-ac-xxxx.shared``) and ``SOURCE_URL``
to a file of yours. Run offline with ``make demo`` (the emulator behind ``carto_default`` serves the file).
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from carto_provider.operators.imports import CartoImportOperator
from carto_provider.operators.sql import CartoQueryOperator, CartoSQLOperator

try:  # Airflow 3
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.x
    from airflow.models import DAG  # type: ignore[no-redef,assignment]
    from airflow.models.param import Param  # type: ignore[no-redef,assignment]

#: A GeoJSON file of stores. The emulator behind ``carto_default`` serves this one; use your own URL.
SOURCE_URL = "{{ conn.carto_default.host }}/emulator/files/stores.geojson"

with DAG(
    dag_id="carto_lineage",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Spliced into SQL text and overridable by dag_run.conf: Airflow checks it is `project.dataset`.
    params={
        "dataset": Param(
            "carto-dw-ac-emulator.shared",
            type="string",
            pattern=r"^[a-z][a-z0-9-]{4,61}[a-z0-9]\.[A-Za-z0-9_]{1,1024}$",
        )
    },
    tags=["carto", "example", "lineage"],
) as dag:
    load = CartoImportOperator(
        task_id="import_stores",
        url=SOURCE_URL,
        destination="{{ params.dataset }}.lineage_stores",
        overwrite=True,
    )
    summarise = CartoSQLOperator(
        task_id="summarise",
        sql="CREATE OR REPLACE TABLE `{{ params.dataset }}.lineage_store_count` AS "
        "SELECT COUNT(*) AS stores FROM `{{ params.dataset }}.lineage_stores`",
    )
    read = CartoQueryOperator(
        task_id="read_count",
        sql="SELECT stores FROM `{{ params.dataset }}.lineage_store_count`",
    )
    audit = SQLExecuteQueryOperator(
        task_id="audit",
        conn_id="carto_default",
        sql=[
            "CREATE TABLE IF NOT EXISTS `{{ params.dataset }}.lineage_audit` (day DATE, stores INT64)",
            "INSERT INTO `{{ params.dataset }}.lineage_audit` "
            "SELECT DATE '{{ ds }}', stores FROM `{{ params.dataset }}.lineage_store_count`",
        ],
    )
    load >> summarise >> [read, audit]
