"""Operators for CARTO's Location Data Services: batch geocoding and a quota check before a run.

Results go to XCom (at most ``max_xcom_results`` rows, checked before any quota is spent) or to a
table the user names, written through the SQL API: SQL jobs that ``INSERT`` the rows as bound
parameters (BigQuery SQL, as the CARTO Data Warehouse and BigQuery connections speak it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, BaseOperator

from carto_provider.api.lds import BATCH_LIMIT, GeocodeResult, LDSQuota
from carto_provider.api.sql import CARTO_DW
from carto_provider.hooks.lds import CartoLDSHook
from carto_provider.hooks.sql import CartoSQLHook

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: Rows per INSERT job when results go to a table.
INSERT_ROWS = 500
_TABLE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+")


def checked_table(name: str) -> str:
    """``project.dataset.table`` (backquotes dropped), refusing anything else: it goes into SQL."""
    table = str(name or "").strip().strip("`")
    if not _TABLE.fullmatch(table):
        raise ValueError(f"The destination must be a table project.dataset.table, not {name!r}.")
    return table


def insert_statement(table: str, results: Sequence[GeocodeResult]) -> tuple[str, dict[str, Any]]:
    """One ``INSERT`` of ``results`` into ``table`` with every value a bound parameter."""
    params: dict[str, Any] = {}
    rows = []
    for i, result in enumerate(results):
        params.update(
            {
                f"a{i}": result.address,
                f"y{i}": result.latitude,
                f"x{i}": result.longitude,
                f"e{i}": result.error,
            }
        )
        rows.append(f"(@a{i}, CAST(@y{i} AS FLOAT64), CAST(@x{i} AS FLOAT64), CAST(@e{i} AS STRING))")
    sql = f"INSERT INTO `{table}` (address, latitude, longitude, error) VALUES {', '.join(rows)}"  # noqa: S608 - checked name
    return sql, params


def quota_short(quota: LDSQuota, needed: int) -> str | None:
    """Why a run of ``needed`` requests would exceed the quota, or None (also when CARTO did not say)."""
    if quota.remaining is None or quota.remaining >= needed:
        return None
    return (
        f"CARTO LDS quota: {quota.remaining} request(s) left (used {quota.used} of {quota.limit}); "
        f"the run needs {needed}."
    )


class CartoLDSQuotaCheckOperator(BaseOperator):
    """Fail (or skip, ``on_exceed="skip"``) when fewer than ``requests`` LDS requests are left.

    Returns the quota ``{"used", "limit", "remaining"}``. CARTO's quota reply is not published; when
    it shows no numbers the check passes with a warning.
    """

    template_fields: Sequence[str] = ("requests",)
    ui_color = "#3ab6e0"

    def __init__(
        self,
        *,
        requests: int,
        on_exceed: str = "fail",
        carto_conn_id: str = CartoLDSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_exceed not in ("fail", "skip"):
            raise ValueError(
                f"{kwargs.get('task_id')}: on_exceed must be 'fail' or 'skip', not {on_exceed!r}."
            )
        self.requests, self.on_exceed, self.carto_conn_id = requests, on_exceed, carto_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        quota = CartoLDSHook(self.carto_conn_id).quota()
        if quota.remaining is None:
            self.log.warning("CARTO's LDS quota reply shows no remaining count; not checked")
        short = quota_short(quota, int(self.requests))
        if short:
            raise (AirflowSkipException if self.on_exceed == "skip" else AirflowFailException)(short)
        return {"used": quota.used, "limit": quota.limit, "remaining": quota.remaining}


class CartoBatchGeocodeOperator(BaseOperator):
    """Geocode a list of addresses with CARTO LDS (batches of at most 10,000).

    :param addresses: the addresses. Templated.
    :param country: ISO-3166 alpha-2 code restricting the search (e.g. ``ES``). Templated.
    :param destination: a table ``project.dataset.table`` to write ``address, latitude, longitude,
        error`` rows to (created if missing; ``overwrite`` replaces it). Templated. Without it the rows
        are returned to XCom.
    :param connection: the CARTO connection of ``destination`` (``carto_dw``).
    :param max_xcom_results: the most rows returned to XCom; more addresses without a destination
        fail the task before any quota is spent.
    :param check_quota: read the quota first and fail before a run that would exceed it.
    """

    template_fields: Sequence[str] = ("addresses", "country", "destination", "connection")
    ui_color = "#3ab6e0"

    def __init__(
        self,
        *,
        addresses: Sequence[str] | str,
        country: str | None = None,
        destination: str | None = None,
        connection: str = CARTO_DW,
        overwrite: bool = False,
        max_xcom_results: int = 1_000,
        check_quota: bool = True,
        batch_size: int = BATCH_LIMIT,
        poll_interval: float = 2.0,
        carto_conn_id: str = CartoLDSHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.addresses, self.country, self.destination, self.connection = (
            addresses,
            country,
            destination,
            connection,
        )
        self.overwrite, self.max_xcom_results, self.check_quota = overwrite, max_xcom_results, check_quota
        self.batch_size, self.poll_interval, self.carto_conn_id = batch_size, poll_interval, carto_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        addresses = (
            [str(a) for a in self.addresses] if not isinstance(self.addresses, str) else [self.addresses]
        )
        table = checked_table(self.destination) if self.destination else None
        if table is None and len(addresses) > self.max_xcom_results:
            raise AirflowFailException(
                f"{len(addresses)} addresses would return more than "
                f"max_xcom_results={self.max_xcom_results} rows to XCom: set destination to write them "
                "to a table."
            )
        hook = CartoLDSHook(self.carto_conn_id)
        if self.check_quota and (short := quota_short(hook.quota(), len(addresses))):
            raise AirflowFailException(short)
        results = hook.batch_geocode(addresses, country=self.country, batch_size=self.batch_size)
        failed = sum(1 for r in results if r.error)
        if table is None:
            return {
                "geocoded": len(results) - failed,
                "failed": failed,
                "results": [r.row() for r in results],
            }
        self._write(table, results)
        return {"geocoded": len(results) - failed, "failed": failed, "destination": table}

    def _write(self, table: str, results: Sequence[GeocodeResult]) -> None:
        hook = CartoSQLHook(self.carto_conn_id)
        create = "CREATE OR REPLACE TABLE" if self.overwrite else "CREATE TABLE IF NOT EXISTS"
        statements: list[tuple[str, dict[str, Any] | None]] = [
            (f"{create} `{table}` (address STRING, latitude FLOAT64, longitude FLOAT64, error STRING)", None)
        ]
        for start in range(0, len(results), INSERT_ROWS):
            statements.append(insert_statement(table, results[start : start + INSERT_ROWS]))
        for sql, params in statements:
            job = hook.submit_job(sql, connection=self.connection, query_parameters=params)
            hook.wait_for_job(
                job.job_id, connection=self.connection, poll_interval=self.poll_interval, timeout=3600
            )
        self.log.info("Wrote %d geocoded row(s) to %s", len(results), table)
