"""``CartoJobTrigger``: polls a CARTO job or import from the triggerer until it ends.

A trigger's keyword arguments are stored in Airflow's database, so they hold ids and settings only,
never a token or a secret: the trigger reads the Airflow connection itself, the async way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from carto_provider.auth.errors import CartoError
from carto_provider.hooks.sql_api import CartoJob, poll_delays
from carto_provider.hooks.sql_async import CartoSQLAsyncHook

#: Event statuses besides a job's outcome (``success``, ``failed``, ``cancelled``).
ERROR, TIMEOUT = "error", "timeout"


class CartoJobTrigger(BaseTrigger):
    """Base of the CARTO triggers: poll, then fire one event when the job ends.

    The event payload is ``{"status": ..., "job_id": ..., "job": <CartoJob.summary()>, "message": ...}``
    where ``status`` is ``success``, ``failed``, ``cancelled``, ``timeout`` or ``error`` (CARTO could
    not be asked).

    :param job_id: CARTO's job id.
    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param poll_interval: the longest wait between two status checks, in seconds (checks start 1 s
        apart and double up to it).
    :param cancel_on_kill: cancel the CARTO job when a user kills the task (mark failed/success,
        clear) and when ``end_time`` passes. Airflow calls a trigger's ``on_kill`` from 3.3 on; on
        older versions a killed deferred task leaves its CARTO job running.
    :param end_time: epoch seconds after which the trigger gives up (``timeout`` event).
    """

    def __init__(
        self,
        *,
        job_id: str,
        carto_conn_id: str = CartoSQLAsyncHook.default_conn_name,
        poll_interval: float = 10.0,
        cancel_on_kill: bool = True,
        end_time: float | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.carto_conn_id = carto_conn_id
        self.poll_interval = float(poll_interval)
        self.cancel_on_kill = cancel_on_kill
        self.end_time = end_time

    # ------------------------------------------------------------------ what subclasses provide

    def _kwargs(self) -> dict[str, Any]:
        """The subclass's own serialised arguments."""
        return {}

    async def _fetch(self, hook: CartoSQLAsyncHook) -> CartoJob:
        raise NotImplementedError

    async def _cancel(self, hook: CartoSQLAsyncHook) -> CartoJob:
        raise NotImplementedError

    # ------------------------------------------------------------------ BaseTrigger

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and the JSON-safe arguments that rebuild this trigger."""
        cls = type(self)
        return (
            f"{cls.__module__}.{cls.__qualname__}",
            {
                "job_id": self.job_id,
                "carto_conn_id": self.carto_conn_id,
                "poll_interval": self.poll_interval,
                "cancel_on_kill": self.cancel_on_kill,
                "end_time": self.end_time,
                **self._kwargs(),
            },
        )

    def _hook(self) -> CartoSQLAsyncHook:
        return CartoSQLAsyncHook(self.carto_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Check the job until it ends (or ``end_time`` passes), then fire one event."""
        hook = self._hook()
        delays = poll_delays(self.poll_interval)
        try:
            while True:
                job = await self._fetch(hook)
                if job.done:
                    yield TriggerEvent(self._event(job.outcome, job, f"{job.describe()} is {job.status!r}"))
                    return
                remaining = None if self.end_time is None else self.end_time - time.time()
                if remaining is not None and remaining <= 0:
                    yield TriggerEvent(await self._timed_out(hook, job))
                    return
                delay = next(delays)
                await asyncio.sleep(delay if remaining is None else min(delay, remaining))
        except CartoError as exc:
            yield TriggerEvent({"status": ERROR, "job_id": self.job_id, "job": None, "message": str(exc)})
        finally:
            await hook.aclose()

    async def _timed_out(self, hook: CartoSQLAsyncHook, job: CartoJob) -> dict[str, Any]:
        message = f"{job.describe()} was still {job.status or 'running'!r} when the task's time ran out"
        if self.cancel_on_kill:
            job = await self._cancel(hook)
            message += "; it has been cancelled"
        return self._event(TIMEOUT, job, message)

    def _event(self, status: str, job: CartoJob, message: str) -> dict[str, Any]:
        return {"status": status, "job_id": job.job_id, "job": job.summary(), "message": message}

    async def on_kill(self) -> None:
        """Cancel the CARTO job when a user kills the deferred task (Airflow 3.3+)."""
        if not self.cancel_on_kill:
            return
        hook = self._hook()
        try:
            await self._cancel(hook)
        except CartoError as exc:
            self.log.warning("Could not cancel CARTO job %r: %s", self.job_id, exc)
        finally:
            await hook.aclose()
