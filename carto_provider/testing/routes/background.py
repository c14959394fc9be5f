"""Emulated long-running CARTO jobs (SQL jobs, imports): a thread per job that takes a set time.

A job is ``pending`` until its thread starts, ``running`` for ``duration`` seconds, then does its work
and ends ``success`` or ``failure``. Cancelling it during that time ends it ``cancelled`` before the
work runs, so a cancelled job leaves no trace in the warehouse. What CARTO calls these states is
decided by the route (``words``), so tests can play CARTO's undocumented status vocabularies.
"""

from __future__ import annotations

import atexit
import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PENDING, RUNNING, SUCCESS, FAILURE, CANCELLED = "pending", "running", "success", "failure", "cancelled"
TERMINAL = frozenset({SUCCESS, FAILURE, CANCELLED})
DEFAULT_WORDS: Mapping[str, str] = {s: s for s in (PENDING, RUNNING, SUCCESS, FAILURE, CANCELLED)}
#: The worst vocabulary CARTO's SQL job typing allows: success and failure both ``done``, told
#: apart only by the ``error`` object (``@carto/ps-services`` types ``status`` as any string).
WORST_CASE_WORDS: Mapping[str, str] = {**DEFAULT_WORDS, SUCCESS: "done", FAILURE: "done"}


#: Job threads not yet finished. At interpreter exit they are stopped and joined: a thread that drops
#: the last reference to the warehouse while Python finalises destroys DuckDB's connection in a
#: thread that may no longer take the GIL, and the process aborts.
_THREADS: dict[threading.Thread, BackgroundJob] = {}
_THREADS_LOCK = threading.Lock()
EXIT_JOIN_TIMEOUT = 10.0


@atexit.register
def _stop_at_exit() -> None:
    with _THREADS_LOCK:
        running = list(_THREADS.items())
    for _, job in running:
        job._cancel.set()
    for thread, _ in running:
        thread.join(EXIT_JOIN_TIMEOUT)


class JobFailure(Exception):
    """Raised by a job's work: the job ends ``failure`` with this message (and ``code``) as its error."""

    def __init__(self, message: str, code: str = "jobFailed") -> None:
        super().__init__(message)
        self.code = code


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")


def new_job_id(prefix: str) -> str:
    """A random, URL-safe job id."""
    return f"{prefix}_{secrets.token_hex(10)}"


@dataclass(eq=False)
class BackgroundJob:
    """One emulated job; ``fields`` are what the API returns besides id, status, error and times."""

    job_id: str
    duration: float
    fields: dict[str, Any] = field(default_factory=dict)
    state: str = PENDING
    error: str | None = None
    error_code: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)
    _working: bool = field(default=False, repr=False)

    @property
    def active(self) -> bool:
        """Pending or running."""
        return self.state not in TERMINAL

    def start(self, work: Callable[[], dict[str, Any] | None]) -> None:
        """Run ``work`` in a daemon thread after ``duration`` seconds unless cancelled first."""
        thread = threading.Thread(target=self._run, args=(work,), name=f"emulated-{self.job_id}", daemon=True)
        with _THREADS_LOCK:
            for finished in [t for t in _THREADS if not t.is_alive()]:
                del _THREADS[finished]
            _THREADS[thread] = self
        thread.start()

    def _set(self, state: str, error: str | None = None, code: str | None = None) -> None:
        self.state, self.error, self.error_code, self.updated_at = state, error, code, time.time()

    def _run(self, work: Callable[[], dict[str, Any] | None]) -> None:
        try:
            self._work(work)
        finally:
            self.finished.set()

    def _work(self, work: Callable[[], dict[str, Any] | None]) -> None:
        with self._lock:
            if self.state == PENDING:
                self._set(RUNNING)
        if self._cancel.wait(self.duration):
            return
        with self._lock:
            if self.state != RUNNING:  # cancelled at the last moment
                return
            self._working = True  # too late to cancel from here on, as in a warehouse commit
        try:
            self.fields.update(work() or {})
        except JobFailure as exc:
            outcome: tuple[str, str | None, str | None] = (FAILURE, str(exc), exc.code)
        except Exception as exc:  # a bug in the emulator still ends the job, visibly
            message = f"Internal error in the CARTO emulator: {type(exc).__name__}: {exc}"
            outcome = (FAILURE, message, "internalError")
        else:
            outcome = (SUCCESS, None, None)
        with self._lock:
            self._set(*outcome)

    def cancel(self) -> bool:
        """Cancel if still pending or running; True when this call cancelled it."""
        with self._lock:
            if not self.active or self._working:
                return False
            self._set(CANCELLED)
        self._cancel.set()
        return True

    def render(
        self, words: Mapping[str, str] = DEFAULT_WORDS, *, error_object: bool = False
    ) -> dict[str, Any]:
        """The job as the API shows it; ``error_object``: the error as ``{code, msg}`` (``{}`` when
        none), as CARTO's SQL jobs report it, else as a string (absent when none)."""
        body: dict[str, Any] = {"jobId": self.job_id, "status": words.get(self.state, self.state)}
        body.update(self.fields)
        body["createdAt"] = self.created
        body["updatedAt"] = _iso(self.updated_at)
        if error_object:
            body["error"] = {"code": self.error_code, "msg": self.error} if self.error is not None else {}
        elif self.error is not None:
            body["error"] = self.error
        return body

    @property
    def created(self) -> str:
        """``createdAt`` as the API shows it (ISO 8601, UTC)."""
        return _iso(self.created_at)


class JobStore:
    """The jobs of one emulated API, by id (thread-safe)."""

    def __init__(self) -> None:
        self._jobs: dict[str, BackgroundJob] = {}
        self._lock = threading.Lock()

    def __getitem__(self, job_id: str) -> BackgroundJob:
        with self._lock:
            return self._jobs[job_id]

    def get(self, job_id: str) -> BackgroundJob | None:
        """The job, or None."""
        with self._lock:
            return self._jobs.get(job_id)

    def add(self, job: BackgroundJob, *, max_active: int | None = None) -> bool:
        """Keep ``job``; with ``max_active``, only if fewer jobs than that are pending or running."""
        with self._lock:
            if max_active is not None and sum(1 for j in self._jobs.values() if j.active) >= max_active:
                return False
            self._jobs[job.job_id] = job
            return True

    def newest_first(self) -> list[BackgroundJob]:
        """Every job, the newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)
