"""``CartoJobSensor``: wait for a CARTO job started elsewhere (another task, CARTO's UI, a script)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, BaseSensorOperator, PokeReturnValue

from carto_provider.hooks.jobs import RESULTS, CartoJob, CartoJobTimeout, JobKind, job_from_event
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.operators.base import default_deferrable, default_end_from_trigger, seconds

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class CartoJobSensor(BaseSensorOperator):
    """Succeed when a CARTO job has finished successfully; fail with CARTO's error if it failed.

    The job is only watched, never cancelled (it is someone else's). Subclasses fix the ``kind``.

    :param job_id: CARTO's job id. Templated.
    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param deferrable: wait in the triggerer, checking every ``poke_interval`` seconds at most
        (default ``[operators] default_deferrable``).
    :param end_from_trigger: with ``deferrable``, the trigger ends the task when the job ends (as
        the operators' option: :func:`~carto_provider.operators.base.default_end_from_trigger`;
        default ``[carto] end_from_trigger``, false).
    """

    ui_color = "#3ab6e0"
    kind: JobKind
    #: The CARTO connection of the job (SQL jobs only).
    connection: str | None = None

    def __init__(
        self,
        *,
        job_id: str,
        carto_conn_id: str = CartoSQLHook.default_conn_name,
        deferrable: bool | None = None,
        end_from_trigger: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.carto_conn_id = carto_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.end_from_trigger = default_end_from_trigger() if end_from_trigger is None else end_from_trigger

    #: The shape of the return value, a key of :data:`~carto_provider.hooks.jobs.RESULTS`.
    result_shape = "ids"

    def result(self, job: CartoJob) -> Any:
        """What the sensor returns (XCom) once the job succeeded: by default its ids."""
        return RESULTS[self.result_shape](job)

    def poke(self, context: Context) -> PokeReturnValue:
        """Check the job once."""
        hook = CartoSQLHook(self.carto_conn_id)
        job = hook.get(self.kind, str(self.job_id), connection=self.connection)
        self.log.info("%s is %r", job.describe(), job.status)
        if not job.done:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self.result(job.check()))

    def execute(self, context: Context) -> Any:
        """Poke; when deferrable and not done yet, defer to the triggerer."""
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        timeout = seconds(self.timeout)
        # Imported here: Airflow's trigger machinery costs ~10 ms that DAG parsing need not pay.
        from carto_provider.triggers.base import CartoJobTrigger

        self.defer(
            trigger=CartoJobTrigger(
                job_id=str(self.job_id),
                kind=self.kind.label,
                connection=self.connection,
                carto_conn_id=self.carto_conn_id,
                poll_interval=seconds(self.poke_interval) or 60.0,
                cancel_on_kill=False,
                end_time=time.time() + timeout if timeout else None,
                end_from_trigger=self.end_from_trigger and type(self).result is CartoJobSensor.result,
                result=self.result_shape,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired (the same event decoder as the operators)."""
        try:
            return self.result(job_from_event(event))
        except CartoJobTimeout as exc:
            raise AirflowSensorTimeout(str(exc)) from None
