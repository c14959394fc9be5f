"""The ``carto`` asset URI scheme: ``carto://{CARTO connection}/{table}``.

``{table}`` is the table as the warehouse behind the CARTO connection names it, the way CARTO's
import ``destination`` does: ``project.dataset.table`` on the CARTO Data Warehouse (``carto_dw``), for
example ``carto://carto_dw/carto-dw-ac-xxxx.shared.stores``. Registered in the provider info
(``asset-uris``; ``dataset-uris`` on Airflow 2), so Airflow normalises these URIs with
:func:`sanitize_uri` (connection lower-cased, backticks and a trailing slash dropped) and refuses a
malformed one with a message that says what is wrong, and OpenLineage names them with
:func:`convert_asset_to_openlineage` as :mod:`carto_provider.lineage` names tables.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from carto_provider.api.sql import CARTO_DW

if TYPE_CHECKING:
    from airflow.providers.common.compat.openlineage.facet import Dataset as OpenLineageDataset

SCHEME = "carto"
_CONNECTION = re.compile(r"^[A-Za-z0-9_\-]+$")
_EXAMPLE = "carto://carto_dw/carto-dw-ac-xxxx.shared.stores"


def table_of(path: str, connection: str) -> str:
    """The table part of a ``carto`` URI's path, checked (2 or 3 dot-separated names; 3 on carto_dw)."""
    table = path.strip("/").replace("`", "").strip()
    parts = table.split(".")
    if not table or "/" in table or any(not part.strip() for part in parts) or len(parts) > 3:
        raise ValueError(
            f"A carto asset URI names one table after the connection, like {_EXAMPLE}; got path {path!r}."
        )
    if connection == CARTO_DW and len(parts) != 3:
        raise ValueError(
            f"A carto_dw table needs its project, dataset and table (like {_EXAMPLE}), not {table!r}."
        )
    return table


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's normaliser of ``carto://`` URIs; raises ValueError for a malformed one."""
    connection = (uri.netloc or "").lower()
    if not connection or not _CONNECTION.match(connection):
        raise ValueError(
            f"A carto asset URI starts with the CARTO connection name, like {_EXAMPLE}; got {uri.netloc!r}."
        )
    if uri.query or uri.fragment:
        raise ValueError(f"A carto asset URI has no query or fragment, like {_EXAMPLE}.")
    table = table_of(uri.path, connection)
    return uri._replace(netloc=connection, path=f"/{table}")


def carto_asset_uri(table: str, connection: str = CARTO_DW) -> str:
    """``carto://{connection}/{table}``, normalised."""
    return sanitize_uri(urlsplit(f"{SCHEME}://{connection}/{table}")).geturl()


def create_asset(*, table: str, connection: str = CARTO_DW, extra: dict[str, Any] | None = None) -> Any:
    """An ``Asset`` (Airflow 3) or ``Dataset`` (Airflow 2) for a table behind a CARTO connection."""
    try:
        from airflow.sdk.definitions.asset import Asset
    except ImportError:  # Airflow 2
        from airflow.datasets import Dataset as Asset  # type: ignore[no-redef]
    return Asset(uri=carto_asset_uri(table, connection), extra=extra)


def convert_asset_to_openlineage(asset: Any, lineage_context: Any = None) -> OpenLineageDataset:
    """The OpenLineage dataset of a ``carto`` asset (namespace ``bigquery`` for the CARTO DW)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset as OpenLineageDataset

    from carto_provider.lineage import namespace_of

    parsed = urlsplit(asset.uri)
    return OpenLineageDataset(namespace=namespace_of(parsed.netloc), name=parsed.path.strip("/"))


def default_outlets(destination: str, connection: str) -> list[Any]:
    """The import operator's default outlets: its destination table, when it is not templated."""
    if "{{" in destination or "{%" in destination or "{{" in connection:
        return []
    try:
        return [create_asset(table=destination, connection=connection)]
    except ValueError:  # e.g. dataset.table on carto_dw: no asset rather than a broken DAG
        return []
