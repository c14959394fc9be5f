"""``CartoJobTrigger``: the one trigger of this provider, polling any CARTO job kind until it ends.

A trigger's keyword arguments are stored in Airflow's database, so they hold ids and settings only,
never a token or a secret: the trigger reads the Airflow connection itself, the async way.

With ``end_from_trigger`` the trigger ends its task itself when the job succeeded (Airflow's
``TaskSuccessEvent``, the task's return value as its ``return_value`` XCom) or failed (a
``TaskFailedEvent`` after logging CARTO's error, where Airflow routes it to a retry: 3.3+), so no
worker runs ``execute_complete`` only to decode the event. A timeout or a lost job still resumes
the task on a worker, where it fails as it does without the option.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow import __version__ as airflow_version
from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSuccessEvent, TriggerEvent

from carto_provider.api.jobs import (
    CANCELLED,
    ERROR,
    FAILED,
    RESULTS,
    SQL_JOB,
    SUCCESS,
    TIMEOUT,
    CartoJob,
    JobEvent,
    JobWatch,
    kind_of,
)
from carto_provider.api.untrusted import sanitize
from carto_provider.errors import CartoError, CartoJobError
from carto_provider.hooks.api_async import CartoAPIAsyncHook

__all__ = ["CartoJobTrigger", "failure_ends_in_trigger"]


#: Seconds a status check may take past ``end_time``: the last check, made at ``end_time``, still
#: tells whether the job ended or is running; a server that does not answer cannot hold the trigger.
FINAL_CHECK_GRACE = 5.0


def failure_ends_in_trigger() -> bool:
    """Whether this Airflow retries a task its trigger failed (3.3+ does; 2.x and older 3.x mark it
    failed for good, so there a failed job resumes the task on a worker, retries and all)."""
    major, minor = (int(part) for part in airflow_version.split(".")[:2])
    return (major, minor) >= (3, 3)


def _ending(ending: TriggerEvent, event: JobEvent) -> TriggerEvent:
    """A task-end event that also carries the job's event as its payload, which only in-process
    runs read: ``airflow dags test`` (3.3) resumes the task with any event's payload instead of
    ending it, and ``execute_complete`` decodes it there as usual. The triggerer sends no payload
    of a task-end event (it only sends the state and the XComs)."""
    ending.payload = event.to_json()
    return ending


class CartoJobTrigger(BaseTrigger):
    """Polls a CARTO SQL job or import, then fires one event when it ends.

    The event payload is :meth:`JobEvent.to_json() <carto_provider.api.jobs.JobEvent.to_json>`:
    ``{"status", "job_id", "job", "message"}`` where ``status`` is ``success``, ``failed``,
    ``cancelled``, ``timeout`` or ``error`` (CARTO could not be asked); decode it with
    :func:`~carto_provider.api.jobs.job_from_event`.

    :param job_id: CARTO's job id.
    :param kind: ``"SQL job"`` (also a Workflow run) or ``"import"``.
    :param connection: the CARTO connection of a SQL job.
    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param poll_interval: the longest wait between two status checks, in seconds (checks start 0.5 s
        apart and grow by half up to it, :func:`~carto_provider.api.jobs.poll_delays`).
    :param cancel_on_kill: cancel the CARTO job when a user kills the task (mark failed/success,
        clear) and when ``end_time`` passes. Airflow calls a trigger's ``on_kill`` from 3.3 on; on
        older versions a killed deferred task leaves its CARTO job running.
    :param end_time: epoch seconds after which the trigger gives up (``timeout`` event).
    :param status_words: more job status words, word -> outcome (see ``CartoAPIHook``).
    :param end_from_trigger: end the task here when the job ends (see the module doc) instead of
        resuming it on a worker.
    :param end_failures: with ``end_from_trigger``, also end the task when the job failed (Airflow
        3.3+); False: only a success ends here (the sensors, whose ``soft_fail``/``never_fail``
        decide what a failure does on a worker).
    :param result: the shape of the task's return value, a key of
        :data:`~carto_provider.api.jobs.RESULTS` (with ``end_from_trigger``).
    :param result_fields: keyword arguments of that shape (e.g. an import's ``destination``).
    """

    def __init__(
        self,
        *,
        job_id: str,
        kind: str = SQL_JOB.label,
        connection: str | None = None,
        carto_conn_id: str = CartoAPIAsyncHook.default_conn_name,
        poll_interval: float = 10.0,
        cancel_on_kill: bool = True,
        end_time: float | None = None,
        status_words: dict[str, str] | None = None,
        end_from_trigger: bool = False,
        end_failures: bool = True,
        result: str = "ids",
        result_fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.kind = kind_of(kind).label
        self.connection = connection
        self.carto_conn_id = carto_conn_id
        self.poll_interval = float(poll_interval)
        self.cancel_on_kill = cancel_on_kill
        self.end_time = end_time
        self.status_words = dict(status_words) if status_words else None
        self.end_from_trigger = end_from_trigger
        self.end_failures = end_failures
        if result not in RESULTS:
            raise ValueError(f"Unknown CARTO task result {result!r}; known: {sorted(RESULTS)}")
        self.result = result
        self.result_fields = dict(result_fields or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and the JSON-safe arguments that rebuild this trigger."""
        cls = type(self)
        return (
            f"{cls.__module__}.{cls.__qualname__}",
            {
                "job_id": self.job_id,
                "kind": self.kind,
                "connection": self.connection,
                "carto_conn_id": self.carto_conn_id,
                "poll_interval": self.poll_interval,
                "cancel_on_kill": self.cancel_on_kill,
                "end_time": self.end_time,
                "status_words": self.status_words,
                "end_from_trigger": self.end_from_trigger,
                "end_failures": self.end_failures,
                "result": self.result,
                "result_fields": self.result_fields,
            },
        )

    def _hook(self) -> CartoAPIAsyncHook:
        return CartoAPIAsyncHook(self.carto_conn_id, status_words=self.status_words)

    async def _fetch(self, hook: CartoAPIAsyncHook) -> CartoJob:
        return await hook.aget(self.kind, self.job_id, connection=self.connection)

    async def _poll(self, hook: CartoAPIAsyncHook) -> CartoJob | None:
        """One status check, cut short :data:`FINAL_CHECK_GRACE` s after ``end_time`` (None: it had
        not answered by then); the grace lets the check made at ``end_time`` tell the job's status."""
        if self.end_time is None:
            return await self._fetch(hook)
        import anyio

        with anyio.move_on_after(max(0.0, self.end_time - time.time()) + FINAL_CHECK_GRACE):
            return await self._fetch(hook)
        return None

    async def _cancel(self, hook: CartoAPIAsyncHook) -> CartoJob:
        return await hook.acancel(self.kind, self.job_id, connection=self.connection)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Check the job until it ends (or ``end_time`` passes), then fire one event."""
        hook = self._hook()
        try:
            event = await self._follow(hook)
        except CartoError as exc:
            event = JobEvent(ERROR, self.job_id, sanitize(str(exc)))
        except Exception as exc:  # a dead trigger leaves its task deferred for ever: tell the task
            self.log.exception("The CARTO trigger for %s %r failed", self.kind, self.job_id)
            event = JobEvent(
                ERROR, self.job_id, f"The trigger failed ({type(exc).__name__}): {sanitize(str(exc))}"
            )
        finally:
            await hook.aclose()
        yield self._task_event(event)

    def _task_event(self, event: JobEvent) -> TriggerEvent:
        """The event to send: the task's end when this trigger ends it, else the job's event."""
        if not self.end_from_trigger or event.job is None:
            return TriggerEvent(event.to_json())
        if event.status == SUCCESS:
            self.log.info("%s; the task ends in the triggerer.", event.message)
            value = RESULTS[self.result](event.job, **self.result_fields)
            return _ending(TaskSuccessEvent(xcoms={"return_value": value}), event)
        if event.status in (FAILED, CANCELLED) and self.end_failures and failure_ends_in_trigger():
            try:
                event.job.check()
            except CartoJobError as exc:
                self.log.error("%s", sanitize(str(exc)))
            return _ending(TaskFailedEvent(), event)
        return TriggerEvent(event.to_json())

    async def _follow(self, hook: CartoAPIAsyncHook) -> JobEvent:
        watch = JobWatch(self.poll_interval, self.end_time, (await hook.ajob_settings())[1])
        job = await self._poll(hook)
        while job is not None and (delay := watch.next_delay(job)) is not None:
            await asyncio.sleep(delay)
            job = await self._poll(hook)
        if job is None:
            if self.cancel_on_kill:
                await self._cancel(hook)
            return JobEvent(
                TIMEOUT,
                self.job_id,
                f"CARTO had not answered the status check of {self.kind} {self.job_id!r} when the wait's "
                f"time ran out{'; it has been cancelled.' if self.cancel_on_kill else '.'}",
            )
        if not watch.timed_out:
            return JobEvent(job.outcome, job.job_id, f"{job.describe()} is {job.status!r}", job)
        ended = None
        if self.cancel_on_kill:
            try:  # the timeout is what the user must see, not a refused cancel
                ended = await self._cancel(hook)
            except CartoError as exc:
                self.log.warning("Could not cancel %s: %s", job.describe(), exc)
        message = watch.timeout_message(job, cancelled=self.cancel_on_kill, ended=ended)
        return JobEvent(TIMEOUT, job.job_id, message, job)

    async def on_kill(self) -> None:
        """Cancel the CARTO job when a user kills the deferred task (Airflow 3.3+)."""
        if not self.cancel_on_kill:
            return
        hook = self._hook()
        try:
            await self._cancel(hook)
        except CartoError as exc:
            self.log.warning("Could not cancel CARTO %s %r: %s", self.kind, self.job_id, exc)
        finally:
            await hook.aclose()
