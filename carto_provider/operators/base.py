"""``CartoJobOperator``: start a CARTO job, then wait for it by polling or by deferring.

Polling keeps a worker slot for the whole job; deferring (``deferrable=True``) hands the wait to the
triggerer and frees the slot. Either way the task fails with CARTO's own error when the job fails,
and a task killed while it waits cancels its CARTO job (deferred tasks: Airflow 3.3+).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from carto_provider.auth.errors import CartoError
from carto_provider.hooks.sql import CartoSQLHook
from carto_provider.hooks.sql_api import CartoJob, CartoJobTimeout
from carto_provider.triggers.base import ERROR, TIMEOUT, CartoJobTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: Longest wait between two status checks when neither the task nor ``[carto] poll_interval`` says.
DEFAULT_POLL_INTERVAL = 10.0


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` from the Airflow config (false unless set)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def default_poll_interval() -> float:
    """``[carto] poll_interval`` from the Airflow config (env ``AIRFLOW__CARTO__POLL_INTERVAL``)."""
    return conf.getfloat("carto", "poll_interval", fallback=DEFAULT_POLL_INTERVAL)


def job_from_event(event: dict[str, Any] | None) -> CartoJob:
    """The finished job a CARTO trigger reported; raises if it failed, timed out or was not followed."""
    if not event or "status" not in event:
        raise CartoError(f"The CARTO trigger sent no usable event: {event!r}")
    status, message = event["status"], event.get("message") or ""
    if status == ERROR:
        raise CartoError(f"Lost track of CARTO job {event.get('job_id')!r}: {message}")
    if status == TIMEOUT:
        raise CartoJobTimeout(message)
    return CartoJob.from_summary(event["job"]).check()


class CartoJobOperator(BaseOperator):
    """Base of the operators that start a CARTO job and wait for it.

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param poll_interval: the longest wait between two status checks, in seconds; checks start 1 s
        apart and double up to it. Default: ``[carto] poll_interval`` (10 s).
    :param deferrable: wait in the triggerer instead of a worker slot. Default:
        ``[operators] default_deferrable``.
    :param cancel_on_kill: cancel the CARTO job when the task is killed or times out.
    """

    ui_color = "#3ab6e0"

    def __init__(
        self,
        *,
        carto_conn_id: str = CartoSQLHook.default_conn_name,
        poll_interval: float | None = None,
        deferrable: bool | None = None,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.carto_conn_id = carto_conn_id
        self.poll_interval = poll_interval
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.cancel_on_kill = cancel_on_kill
        self._running: CartoJob | None = None

    # ------------------------------------------------------------------ what subclasses provide

    def submit(self, hook: CartoSQLHook) -> CartoJob:
        """Start the CARTO job."""
        raise NotImplementedError

    def wait(self, hook: CartoSQLHook, job: CartoJob, poll_interval: float) -> CartoJob:
        """Poll until the job ends; raise if it failed."""
        raise NotImplementedError

    def cancel(self, hook: CartoSQLHook, job: CartoJob) -> None:
        """Cancel the CARTO job."""
        raise NotImplementedError

    def trigger(self, job: CartoJob, **kwargs: Any) -> CartoJobTrigger:
        """The trigger that waits for ``job`` (``kwargs``: the common trigger arguments)."""
        raise NotImplementedError

    def result(self, job: CartoJob) -> Any:
        """What the task returns (and pushes to XCom) once ``job`` succeeded."""
        return job.ids()

    # ------------------------------------------------------------------ BaseOperator

    def get_hook(self) -> CartoSQLHook:
        """A hook on this task's connection."""
        return CartoSQLHook(self.carto_conn_id)

    def execute(self, context: Context) -> Any:
        """Start the job; wait for it here, or defer to the triggerer."""
        poll_interval = self.poll_interval or default_poll_interval()
        hook = self.get_hook()
        job = self.submit(hook)
        if job.done:
            return self.result(job.check())
        if self.deferrable:
            timeout = self.execution_timeout
            self.defer(
                trigger=self.trigger(
                    job,
                    carto_conn_id=self.carto_conn_id,
                    poll_interval=poll_interval,
                    cancel_on_kill=self.cancel_on_kill,
                    end_time=time.time() + timeout.total_seconds() if timeout else None,
                ),
                method_name="execute_complete",
            )
        self._running = job
        try:
            finished = self.wait(hook, job, poll_interval)
        finally:
            self._running = None
        return self.result(finished)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired: fail with CARTO's error, or return the result."""
        return self.result(job_from_event(event))

    def on_kill(self) -> None:
        """Cancel the CARTO job this task is waiting for (polling mode; the trigger does it when deferred)."""
        job = self._running
        if job is None or not self.cancel_on_kill:
            return
        try:
            self.cancel(self.get_hook(), job)
        except CartoError as exc:
            self.log.warning("Could not cancel %s: %s", job.describe(), exc)
