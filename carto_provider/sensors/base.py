"""``CartoJobSensor``: wait for a CARTO job started elsewhere (another task, CARTO's UI, a script)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
)

from carto_provider.api.jobs import RESULTS, CartoJob, JobKind, job_from_event
from carto_provider.errors import CartoError, CartoJobError, CartoJobTimeout
from carto_provider.hooks.api import CartoAPIHook
from carto_provider.operators.base import default_deferrable, default_end_from_trigger, seconds

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class CartoJobSensor(BaseSensorOperator):
    """Succeed when a CARTO job has finished successfully; fail with CARTO's error if it failed.

    In both modes ``soft_fail`` skips the task when the job failed or the wait timed out, and
    ``never_fail`` skips it on any error (as ``BaseSensorOperator`` does for a poke).

    The job is only watched, never cancelled (it is someone else's). Subclasses fix the ``kind``.

    :param job_id: CARTO's job id. Templated.
    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param deferrable: wait in the triggerer, checking every ``poke_interval`` seconds at most
        (default ``[operators] default_deferrable``).
    :param end_from_trigger: with ``deferrable``, the trigger ends the task when the job succeeded
        (its return value as XCom; see
        :func:`~carto_provider.operators.base.default_end_from_trigger`); a failed job still resumes
        the task on a worker, where ``soft_fail``/``never_fail`` apply. Default ``[carto]
        end_from_trigger`` (false).
    """

    ui_color = "#3ab6e0"
    kind: JobKind
    #: The CARTO connection of the job (SQL jobs only).
    connection: str | None = None

    def __init__(
        self,
        *,
        job_id: str,
        carto_conn_id: str = CartoAPIHook.default_conn_name,
        deferrable: bool | None = None,
        end_from_trigger: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.carto_conn_id = carto_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.end_from_trigger = default_end_from_trigger() if end_from_trigger is None else end_from_trigger

    #: The shape of the return value, a key of :data:`~carto_provider.api.jobs.RESULTS`.
    result_shape = "ids"

    def result(self, job: CartoJob) -> Any:
        """What the sensor returns (XCom) once the job succeeded: by default its ids."""
        return RESULTS[self.result_shape](job)

    def poke(self, context: Context) -> PokeReturnValue:
        """Check the job once; when deferrable and it is not done yet, defer to the triggerer.

        Deferring from here (``TaskDeferred`` is a ``BaseException``, which the base sensor lets
        through) keeps the first check inside ``BaseSensorOperator.execute``: ``soft_fail``,
        ``never_fail`` and ``silent_fail`` apply to it as in polling mode.
        """
        hook = CartoAPIHook(self.carto_conn_id)
        job = hook.get(self.kind, str(self.job_id), connection=self.connection)
        self.log.info("%s is %r", job.describe(), job.status)
        if not job.done:
            if self.deferrable:
                self._defer()
            return PokeReturnValue(is_done=False)
        try:
            return PokeReturnValue(is_done=True, xcom_value=self.result(job.check()))
        except CartoJobError as exc:
            # The watched job failed for good: no retry can change that, and soft_fail skips on it.
            raise AirflowFailException(str(exc)) from exc

    def _defer(self) -> None:
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
                end_from_trigger=self.end_from_trigger and self._trigger_can_end(),
                end_failures=False,  # soft_fail, never_fail and no retry: decided on a worker
                result=self.result_shape,
            ),
            method_name="execute_complete",
        )

    def _trigger_can_end(self) -> bool:
        """Whether the trigger can build what this sensor returns (no own ``result``/``execute_complete``)."""
        cls = type(self)
        return cls.result is CartoJobSensor.result and cls.execute_complete is CartoJobSensor.execute_complete

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired (the same event decoder as the operators).

        Failures become the exceptions a poke raises (a failed job ``AirflowFailException``, a timeout
        ``AirflowSensorTimeout``, anything else ``AirflowException``) and are skipped here under
        ``soft_fail``/``never_fail`` as ``BaseSensorOperator.execute`` skips them (Airflow 2.11's
        ``resume_execution`` knows only ``soft_fail``, and no Airflow knows a ``CartoError``).
        """
        try:
            return self.result(job_from_event(event))
        except CartoError as exc:
            failure = _as_airflow_failure(exc)
        skip = self.never_fail or (
            self.soft_fail and isinstance(failure, (AirflowFailException, AirflowSensorTimeout))
        )
        if skip:
            raise AirflowSkipException(
                f"Skipping ({'never_fail' if self.never_fail else 'soft_fail'}): {failure}"
            ) from failure
        raise failure


def _as_airflow_failure(exc: CartoError) -> AirflowException:
    if isinstance(exc, CartoJobTimeout):
        failure: AirflowException = AirflowSensorTimeout(str(exc))
    elif isinstance(exc, CartoJobError):
        failure = AirflowFailException(str(exc))
    else:
        failure = AirflowException(str(exc))
    failure.__cause__ = exc
    return failure
