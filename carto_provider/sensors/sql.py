"""``CartoSQLJobSensor``: wait for a CARTO SQL job started elsewhere (another DAG, CARTO's UI, a script)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, BaseSensorOperator, PokeReturnValue

from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.hooks.sql_api import CARTO_DW, CartoJobTimeout
from carto_provider.operators.base import default_deferrable, job_from_event
from carto_provider.triggers.sql import CartoSQLJobTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class CartoSQLJobSensor(BaseSensorOperator):
    """Succeed when a CARTO SQL job has finished successfully; fail with CARTO's error if it failed.

    The job is only watched, never cancelled (it is someone else's). Returns the job's ids.

    :param job_id: CARTO's job id. Templated.
    :param connection: the CARTO connection the job runs on (``carto_dw`` by default). Templated.
    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param deferrable: wait in the triggerer, checking every ``poke_interval`` seconds at most
        (default ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("job_id", "connection")
    ui_color = "#3ab6e0"

    def __init__(
        self,
        *,
        job_id: str,
        connection: str = CARTO_DW,
        carto_conn_id: str = CartoSQLHook.default_conn_name,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.connection = connection
        self.carto_conn_id = carto_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    def poke(self, context: Context) -> PokeReturnValue:
        """Check the job once."""
        job = CartoSQLHook(self.carto_conn_id).get_job(self.job_id, connection=self.connection)
        self.log.info("%s is %r", job.describe(), job.status)
        if not job.done:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=job.check().ids())

    def execute(self, context: Context) -> Any:
        """Poke; when deferrable and not done yet, defer to the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        timeout = self.timeout.total_seconds() if isinstance(self.timeout, dt.timedelta) else self.timeout
        self.defer(
            trigger=CartoSQLJobTrigger(
                job_id=self.job_id,
                connection=self.connection,
                carto_conn_id=self.carto_conn_id,
                poll_interval=float(self.poke_interval.total_seconds())
                if isinstance(self.poke_interval, dt.timedelta)
                else float(self.poke_interval),
                cancel_on_kill=False,
                end_time=time.time() + float(timeout) if timeout else None,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired."""
        try:
            return job_from_event(event).ids()
        except CartoJobTimeout as exc:
            raise AirflowSensorTimeout(str(exc)) from None
