"""``CartoJobOperator``: start a CARTO job (or find the one this task started before), then wait for it.

Polling keeps a worker slot for the whole job; deferring (``deferrable=True``) hands the wait to the
triggerer and frees the slot. Either way:

* the task fails with CARTO's own error when the job fails (an ``error`` fails it whatever the status);
* the wait is bounded: by ``execution_timeout``, else by the operator's ``timeout`` (24 h), after
  which the job is cancelled and the task fails naming the job's last status;
* a task killed while it waits (``on_kill``, ``execution_timeout``, mark failed/cleared) cancels its
  CARTO job, exactly once (deferred tasks: the trigger does it, Airflow 3.3+);
* a retried or restarted task first looks for the job it started before and reattaches to it when
  it is running or succeeded (``reattach_states``), instead of paying for the same work twice.

``end_from_trigger=True`` (with ``deferrable``) lets the trigger end the task when the job ends,
instead of a worker resuming it only to decode the event: see :func:`default_end_from_trigger`
for what that gives up.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, conf

from carto_provider.api.identity import TaskIdentity
from carto_provider.api.jobs import RESULTS, RUNNING, SUCCESS, CartoJob, JobKind, job_from_event
from carto_provider.errors import CartoError
from carto_provider.hooks.api import CartoAPIHook
from carto_provider.lineage import CartoLineageMixin

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

__all__ = [
    "DEFAULT_JOB_TIMEOUT",
    "CartoJobOperator",
    "default_deferrable",
    "default_end_from_trigger",
    "default_poll_interval",
]

#: Longest wait between two status checks when neither the task nor ``[carto] poll_interval`` says.
DEFAULT_POLL_INTERVAL = 10.0
#: How long a job may run when the task has no ``execution_timeout``.
DEFAULT_JOB_TIMEOUT = dt.timedelta(hours=24)
#: The outcomes of an earlier job of the same task that a retry reattaches to.
REATTACH_STATES: tuple[str, ...] = (RUNNING, SUCCESS)


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` from the Airflow config (false unless set)."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


def default_end_from_trigger() -> bool:
    """``[carto] end_from_trigger`` from the Airflow config (false unless set).

    Ending a deferred task in the triggerer saves the scheduler pick-up, the executor round trip and
    the task process that resuming it costs (seconds per task). It gives up what only a worker does
    after the wait: the operator's ``execute_complete`` (and a subclass's own ``result``: such a
    task resumes on a worker whatever the option says), the task's post-execute hooks and
    listeners, so OpenLineage sends no COMPLETE event for the task (its START event carries the
    task's datasets instead, without CARTO's job id); a job failure is logged by the trigger
    instead of raised, and fails the task from the triggerer only on Airflow 3.3+, which retries
    such a task.
    Success and failure callbacks still run (the DAG processor runs them).
    """
    return conf.getboolean("carto", "end_from_trigger", fallback=False)


def default_poll_interval() -> float:
    """``[carto] poll_interval`` from the Airflow config (env ``AIRFLOW__CARTO__POLL_INTERVAL``)."""
    return conf.getfloat("carto", "poll_interval", fallback=DEFAULT_POLL_INTERVAL)


def seconds(value: dt.timedelta | float | None) -> float | None:
    """A duration in seconds (``timedelta`` or a number)."""
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class CartoJobOperator(CartoLineageMixin, BaseOperator):
    """Base of the operators that start a CARTO job and wait for it.

    :param carto_conn_id: the Airflow connection (type ``carto``).
    :param poll_interval: the longest wait between two status checks, in seconds; checks start
        0.5 s apart and grow by half up to it. Default: ``[carto] poll_interval`` (10 s).
    :param deferrable: wait in the triggerer instead of a worker slot. Default:
        ``[operators] default_deferrable``.
    :param end_from_trigger: with ``deferrable``, the trigger ends the task when the job ends
        (its return value as XCom) instead of a worker resuming it; see
        :func:`default_end_from_trigger`. Default: ``[carto] end_from_trigger`` (false).
    :param cancel_on_kill: cancel the CARTO job when the task is killed or times out.
    :param wait_for_completion: wait for the job (default); ``False`` returns its ids at once, for
        a sensor to wait for.
    :param timeout: how long the job may run when the task has no ``execution_timeout`` (24 h).
    :param reattach_states: the outcomes (``running``, ``success``) of a job this task started in
        an earlier try that it reattaches to instead of starting another; ``()`` always starts anew.
    :param status_words: more job status words, word -> ``success``/``failed``/``cancelled``/
        ``running`` (added to the provider's own and ``[carto] status_words``).
    """

    ui_color = "#3ab6e0"
    #: The kind of CARTO job the operator runs.
    kind: JobKind
    #: The hook of the API that runs :attr:`kind` (built by :meth:`get_hook`).
    hook_class: type[CartoAPIHook] = CartoAPIHook

    def __init__(
        self,
        *,
        carto_conn_id: str = CartoAPIHook.default_conn_name,
        poll_interval: float | None = None,
        deferrable: bool | None = None,
        end_from_trigger: bool | None = None,
        cancel_on_kill: bool = True,
        wait_for_completion: bool = True,
        timeout: dt.timedelta | float = DEFAULT_JOB_TIMEOUT,
        reattach_states: Collection[str] = REATTACH_STATES,
        status_words: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.carto_conn_id = carto_conn_id
        self.poll_interval = poll_interval
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.end_from_trigger = default_end_from_trigger() if end_from_trigger is None else end_from_trigger
        self.cancel_on_kill = cancel_on_kill
        self.wait_for_completion = wait_for_completion
        self.timeout = timeout
        self.reattach_states = tuple(reattach_states)
        self.status_words = dict(status_words) if status_words else None
        self._running: CartoJob | None = None
        self._cancel_sent = False

    # ------------------------------------------------------------------ what subclasses provide

    def submit(self, hook: Any, identity: TaskIdentity | None) -> CartoJob:
        """Start the CARTO job (tagged with ``identity`` where the kind allows)."""
        raise NotImplementedError

    def find_previous(self, hook: Any, identity: TaskIdentity) -> CartoJob | None:
        """The newest job this task started in an earlier try, as CARTO describes it now, or None."""
        raise NotImplementedError

    #: The shape of the return value, a key of :data:`~carto_provider.api.jobs.RESULTS`.
    result_shape = "ids"

    def result_fields(self) -> dict[str, Any]:
        """The task's arguments its return value takes (keyword arguments of ``result_shape``)."""
        return {}

    def result(self, job: CartoJob) -> Any:
        """What the task returns (and pushes to XCom): by default the job's ids."""
        return RESULTS[self.result_shape](job, **self.result_fields())

    # ------------------------------------------------------------------ BaseOperator

    def get_hook(self) -> CartoAPIHook:
        """A hook on this task's connection (the API hook of the job kind: :attr:`hook_class`)."""
        return self.hook_class(self.carto_conn_id, status_words=self.status_words)

    def execute(self, context: Context) -> Any:
        """Find or start the job; return at once, wait for it here, or defer to the triggerer."""
        hook = self.get_hook()
        job = self._start(hook, TaskIdentity.of(context))
        if not self.wait_for_completion or job.done:
            return self.result(job.check() if job.done else job)
        end_time = time.time() + self._bound()
        poll_interval = self.poll_interval or default_poll_interval()
        if self.deferrable:
            # Imported here: Airflow's trigger machinery costs ~10 ms that DAG parsing need not pay.
            from carto_provider.triggers.base import CartoJobTrigger

            self._running = None  # from here on the trigger cancels it (on_kill, end_time)
            self.defer(
                trigger=CartoJobTrigger(
                    job_id=job.job_id,
                    kind=job.kind,
                    connection=job.connection,
                    carto_conn_id=self.carto_conn_id,
                    poll_interval=poll_interval,
                    cancel_on_kill=self.cancel_on_kill,
                    end_time=end_time,
                    status_words=self.status_words,
                    **self._trigger_ending(),
                ),
                method_name="execute_complete",
            )
        cancel = self._cancel_once if self.cancel_on_kill else None
        # Not cleared when the wait raises: on_kill (called after execution_timeout or a SIGTERM)
        # still knows which job to cancel.
        finished = hook.wait(job, poll_interval=poll_interval, end_time=end_time, cancel=cancel)
        self._running = None
        return self.result(finished)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired: fail with CARTO's error, or return the result."""
        job = job_from_event(event)
        self.carto_job_id = job.job_id  # for lineage (carto_provider.lineage)
        return self.result(job)

    def on_kill(self) -> None:
        """Cancel the CARTO job this task is waiting for (polling mode; the trigger does it when deferred)."""
        if self.cancel_on_kill:
            self._cancel_once()

    # ------------------------------------------------------------------ helpers

    def _start(self, hook: CartoAPIHook, identity: TaskIdentity | None) -> CartoJob:
        previous = self._reattachable(hook, identity)
        if previous is not None:
            self.log.info(
                "Reattached to %s (status %r) started by an earlier try", previous.describe(), previous.status
            )
            job = previous
        else:
            job = self.submit(hook, identity)
            if identity is not None:
                identity.remember(self.kind, job.job_id)
        self._running, self._cancel_sent = job, False
        self.carto_job_id = job.job_id  # for lineage (carto_provider.lineage)
        return job

    def _reattachable(self, hook: CartoAPIHook, identity: TaskIdentity | None) -> CartoJob | None:
        if identity is None or not self.reattach_states:
            return None
        previous = self.find_previous(hook, identity)
        if previous is None:
            return None
        if previous.outcome not in self.reattach_states:
            self.log.info(
                "%s of an earlier try is %r: starting a new one", previous.describe(), previous.status
            )
            return None
        return previous

    def _trigger_ending(self) -> dict[str, Any]:
        """The trigger's ``end_from_trigger`` arguments: only for a task whose ``result`` it can build."""
        if not self.end_from_trigger:
            return {}
        cls = type(self)
        if (
            cls.result is not CartoJobOperator.result
            or cls.execute_complete is not CartoJobOperator.execute_complete
        ):
            self.log.info("%s has its own result(): it resumes on a worker.", cls.__name__)
            return {}
        return {"end_from_trigger": True, "result": self.result_shape, "result_fields": self.result_fields()}

    def _bound(self) -> float:
        """Seconds the job may run: ``execution_timeout`` if set, else ``timeout``."""
        bound = seconds(self.execution_timeout) or seconds(self.timeout)
        if not bound or bound <= 0:
            raise ValueError(f"{self.task_id}: timeout must be a positive duration, not {self.timeout!r}.")
        return bound

    def _cancel_once(self) -> CartoJob | None:
        """Cancel the running job once; returns what CARTO answered (None: nothing was cancelled)."""
        job = self._running
        if job is None or self._cancel_sent:
            return None
        self._cancel_sent = True
        try:
            return self.get_hook().cancel(job.kind, job.job_id, connection=job.connection)
        except CartoError as exc:
            self.log.warning("Could not cancel %s: %s", job.describe(), exc)
            return None
