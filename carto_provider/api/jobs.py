"""The job model: CARTO's SQL jobs and imports (a Workflow run is a SQL job) described once.

A :class:`JobKind` carries what tells the kinds apart (their paths, their cancel call, their label,
their host);
a :class:`CartoJob` is one job as CARTO last described it, and decides its outcome; a
:class:`JobWatch` makes the decisions of one wait (when to look again, when to give up), for the
sync hook and the async trigger alike; :class:`JobEvent` is what a trigger sends back to its task.
No I/O and no Airflow here.

How CARTO reports a job (the order of authority: CARTO's own client ``@carto/ps-services`` 1.1.1,
``dist/types/sqlApi/types.d.ts``, then CARTO's docs, then ``shared/reference/carto-api.md``):

* A SQL job is ``{jobId, query, status: string, error: {code, msg} | {}, createdAt, metadata}``;
  the reply to its creation is ``{externalId, accountId, userId, connectionId, metadata, createdAt}``,
  with **no** ``jobId`` and **no** ``status``: ``externalId`` is the id to poll.
* The error is reported **apart from** the status: any non-empty ``error`` means the job failed,
  whatever the status word says (even ``done``); ``{}`` means no error.
* CARTO does not document the SQL job status words (ps-services types them as ``string``). The
  Imports API documents ``pending``, ``running``, ``success``, ``failure``, ``cancelled``; the legacy
  Batch API used ``done``, ``failed``, ``canceled``, ``unknown``; Activity Data exports
  ``Pending``, ``Running``, ``Success``, ``Failure``, ``Cancelled``; the warehouses under CARTO say
  ``SUCCEEDED``, ``FINISHED``, ``ABORTED``, ``FAILED_WITH_ERROR``... (:data:`DEFAULT_WORDS`). Words
  are read case-insensitively; more can be given (``status_words``: word -> outcome, also the
  Airflow option ``[carto] status_words``). A word outside them is logged at WARNING, naming it,
  and polled on for at most :data:`UNKNOWN_STATUS_PATIENCE` (``[carto] unknown_status_patience``),
  then the wait ends as a timeout that names the word.
* Ids: a job is polled with the id it was created with (the create reply's ``externalId``); a job
  read's ``jobId`` is kept apart (:attr:`CartoJob.reported_id`), since ps-services never says they
  are equal.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from carto_provider.api.activity import activity_path
from carto_provider.api.imports import import_path
from carto_provider.api.sql import CARTO_DW, job_path
from carto_provider.api.untrusted import sanitize
from carto_provider.errors import CartoError, CartoJobError, CartoJobTimeout

log = logging.getLogger(__name__)

#: Fields of a job never put in trigger events or XCom: URLs (signed ones carry credentials; an
#: Activity Data export's download URLs among them) and the SQL (long, and the task has it).
_NOT_SUMMARISED = frozenset(
    {"url", "urls", "downloadUrls", "download_urls", "files", "result", "query", "queryParameters"}
)
#: What a job's status and error mean (:attr:`CartoJob.outcome`).
RUNNING, SUCCESS, FAILED, CANCELLED = "running", "success", "failed", "cancelled"
#: Trigger event statuses besides an outcome: the wait ran out of time, or CARTO could not be asked.
TIMEOUT, ERROR = "timeout", "error"
OUTCOMES = (RUNNING, SUCCESS, FAILED, CANCELLED)

# CARTO Imports API docs; legacy Batch API; BigQuery (DONE); Snowflake (SUCCESS, FAILED_WITH_ERROR,
# FAILED_WITH_INCIDENT, ABORTED, ABORTING, QUEUED, RESUMING_WAREHOUSE, BLOCKED); Databricks statement
# execution (SUCCEEDED, CANCELED, CLOSED); Redshift Data API (SUBMITTED, PICKED, STARTED, FINISHED).
SUCCESS_WORDS = frozenset({"success", "succeeded", "successful", "done", "finished", "complete", "completed"})
FAILURE_WORDS = frozenset(
    {"failure", "failed", "error", "unknown", "failed_with_error", "failed_with_incident", "disconnected"}
)
CANCELLED_WORDS = frozenset({"cancelled", "canceled", "aborted", "closed"})
IN_FLIGHT_WORDS = frozenset(
    {
        "pending", "running", "queued", "in_progress", "created", "started", "submitted", "picked",
        "scheduled", "aborting", "cancelling", "canceling", "blocked", "resuming_warehouse",
        "queued_repairing_warehouse", "restarted",
    }
)  # fmt: skip
#: Every status word this package knows, and its outcome.
DEFAULT_WORDS: Mapping[str, str] = {
    **{w: SUCCESS for w in SUCCESS_WORDS},
    **{w: FAILED for w in FAILURE_WORDS},
    **{w: CANCELLED for w in CANCELLED_WORDS},
    **{w: RUNNING for w in IN_FLIGHT_WORDS},
}
KNOWN_WORDS = frozenset(DEFAULT_WORDS)
#: Seconds an unknown status word is polled on before the wait ends as a timeout naming it.
UNKNOWN_STATUS_PATIENCE = 600.0


def status_words(extra: Mapping[str, str] | str | None = None) -> dict[str, str]:
    """:data:`DEFAULT_WORDS` with ``extra`` (word -> outcome, or that mapping as JSON) added;
    words are lower-cased, outcomes checked."""
    if isinstance(extra, str):
        extra = json.loads(extra) if extra.strip() else {}
    if not isinstance(extra, Mapping):
        raise ValueError(f"status_words must map words to outcomes, not {type(extra).__name__}.")
    words = dict(DEFAULT_WORDS)
    for word, outcome in extra.items():
        if outcome not in OUTCOMES:
            raise ValueError(f"status_words[{word!r}] must be one of {OUTCOMES}, not {outcome!r}.")
        words[str(word).strip().lower()] = outcome
    return words


def error_text(error: Any) -> str | None:
    """A job's ``error`` as sanitised text: ``{code, msg}`` as ``"code: msg"``, a string as is, ``{}``,
    ``""`` and ``None`` as no error, anything else as JSON."""
    text = _raw_error_text(error)
    return None if text is None else sanitize(text)


def _raw_error_text(error: Any) -> str | None:
    if error is None or error == "" or error == {} or error == []:
        return None
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and ("code" in error or "msg" in error):
        return ": ".join(str(error[k]) for k in ("code", "msg") if error.get(k) not in (None, "")) or None
    return json.dumps(error, default=str)


def outcome_of(status: Any, error: Any = None, words: Mapping[str, str] | None = None) -> str:
    """``success``, ``failed``, ``cancelled`` or ``running``: an error fails whatever the status;
    ``words`` (default :data:`DEFAULT_WORDS`) says what each status word means."""
    word = str(status or "").strip().lower()
    outcome = (DEFAULT_WORDS if words is None else words).get(word, RUNNING)
    if error_text(error) is not None:
        return CANCELLED if outcome == CANCELLED else FAILED
    return outcome


# ---------------------------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class JobKind:
    """What tells a kind of CARTO job apart: its label, where to read it, how to cancel it."""

    label: str
    status_path: Callable[[str, str], str]
    cancel_method: str
    cancel_path: Callable[[str, str], str]
    #: Which host serves it: ``api`` (the API base URL) or ``accounts`` (CARTO's accounts host).
    origin: str = "api"

    def describe(self, job_id: str, connection: str | None) -> str:
        """``CARTO SQL job 'j1' on connection 'carto_dw'`` and the like."""
        where = f" on connection {connection!r}" if connection and self is SQL_JOB else ""
        return f"CARTO {self.label} {job_id!r}{where}"


SQL_JOB = JobKind(
    "SQL job",
    status_path=lambda job_id, connection: job_path(connection or CARTO_DW, job_id),
    cancel_method="DELETE",
    cancel_path=lambda job_id, connection: job_path(connection or CARTO_DW, job_id),
)
IMPORT = JobKind(
    "import",
    status_path=lambda job_id, connection: import_path(job_id),
    cancel_method="POST",
    cancel_path=lambda job_id, connection: import_path(job_id, "cancel"),
)
#: An Activity Data export, on CARTO's accounts host (``carto_provider.api.activity``).
ACTIVITY = JobKind(
    "activity data job",
    status_path=lambda job_id, connection: activity_path(job_id),
    cancel_method="DELETE",
    cancel_path=lambda job_id, connection: activity_path(job_id, "cancel"),
    origin="accounts",
)
KINDS = {kind.label: kind for kind in (SQL_JOB, IMPORT, ACTIVITY)}


def kind_of(label: str | JobKind) -> JobKind:
    """The kind called ``label`` (``"SQL job"`` or ``"import"``)."""
    if isinstance(label, JobKind):
        return label
    try:
        return KINDS[label]
    except KeyError:
        raise ValueError(f"Unknown kind of CARTO job {label!r}; known: {sorted(KINDS)}") from None


# ---------------------------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class CartoJob:
    """A SQL job or an import as CARTO last described it.

    ``kind`` is the kind's label (``"SQL job"``, ``"import"`` or ``"activity data job"``);
    ``status`` is CARTO's word and
    ``error`` CARTO's error as text (``None``: no error); ``outcome`` is what they mean; ``body`` the
    response as sent.
    """

    kind: str
    job_id: str
    status: str
    connection: str | None = None
    external_id: str | None = None
    error: str | None = None
    body: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The ``jobId`` a job read reported, when it differs from the polled id (kept apart: the
    #: create reply's ``externalId`` is the id CARTO's client polls with; ps-services 1.1.1).
    reported_id: str | None = None
    #: Extra status words (word -> outcome) on top of :data:`DEFAULT_WORDS`.
    words: Mapping[str, str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_response(
        cls,
        kind: str | JobKind,
        body: Any,
        *,
        connection: str | None = None,
        job_id: str | None = None,
        words: Mapping[str, str] | None = None,
    ) -> CartoJob:
        """Read a job or import response; ``job_id`` is the id it was asked with (and stays the
        job's id whatever the body says), else the create reply's id."""
        label = kind_of(kind).label
        if not isinstance(body, dict):
            raise CartoError(f"CARTO answered a {label} request with {type(body).__name__}, not an object.")
        # ps-services: the create reply has only ``externalId``; a job read has ``jobId``. The
        # polled id is kept: a different ``jobId`` would 404 on the next poll, reattach or cancel.
        reported = body.get("jobId") or body.get("id")
        found = job_id or body.get("externalId") or reported
        if not found:
            raise CartoError(f"CARTO's {label} response has no jobId (fields: {sorted(body)}).")
        # A SQL job's polled id is its externalId (the create reply's id), whatever a read repeats.
        external = body.get("externalId") or (job_id if label == SQL_JOB.label else None)
        return cls(
            kind=label,
            job_id=sanitize(str(found), limit=256),
            status=sanitize(str(body.get("status") or ""), limit=64),
            connection=connection or body.get("connection"),
            external_id=str(external) if external else None,
            error=error_text(body.get("error")),
            body=dict(body),
            reported_id=str(reported) if reported and str(reported) != str(found) else None,
            words=words,
        )

    @property
    def outcome(self) -> str:
        """``running``, ``success``, ``failed`` or ``cancelled`` (an error fails whatever the status)."""
        return outcome_of(self.status, self.error, self._words())

    def _words(self) -> Mapping[str, str]:
        return DEFAULT_WORDS if self.words is None else {**DEFAULT_WORDS, **self.words}

    @property
    def done(self) -> bool:
        """True once the job reached a terminal status or reported an error."""
        return self.outcome != RUNNING

    @property
    def status_known(self) -> bool:
        """Whether CARTO's status word is one this package knows (an empty one, as in a creation
        reply, counts as known)."""
        word = self.status.strip().lower()
        return not word or word in self._words()

    def ids(self) -> dict[str, Any]:
        """What identifies the job (the XCom of the SQL operators)."""
        return {
            "job_id": self.job_id,
            "external_id": self.external_id,
            "connection": self.connection,
            "status": self.status,
            "reported_id": self.reported_id,
        }

    def summary(self) -> dict[str, Any]:
        """A JSON-safe description for trigger events and XCom. CARTO's echo of the import URL is left
        out (signed URLs carry credentials), and of the SQL (the task has it; it may be long)."""
        return {
            "kind": self.kind,
            **self.ids(),
            "error": self.error,
            "body": {k: v for k, v in self.body.items() if k not in _NOT_SUMMARISED},
            "words": dict(self.words) if self.words else None,
        }

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> CartoJob:
        """The job back from :meth:`summary`."""
        return cls(
            kind=str(summary["kind"]),
            job_id=str(summary["job_id"]),
            status=str(summary.get("status") or ""),
            connection=summary.get("connection"),
            external_id=summary.get("external_id"),
            error=summary.get("error"),
            body=dict(summary.get("body") or {}),
            reported_id=summary.get("reported_id"),
            words=summary.get("words") or None,
        )

    def describe(self) -> str:
        """``CARTO SQL job 'j1' on connection 'carto_dw'`` and the like."""
        return kind_of(self.kind).describe(self.job_id, self.connection)

    def check(self) -> CartoJob:
        """Return the job if it succeeded; raise :class:`CartoJobError` if it failed or was cancelled."""
        if self.outcome == FAILED:
            raise CartoJobError(
                f"{self.describe()} failed (status {self.status!r}): {self.error or 'CARTO gave no error'}",
                job=self,
            )
        if self.outcome == CANCELLED:
            detail = f": {self.error}" if self.error else ""
            raise CartoJobError(f"{self.describe()} was cancelled (status {self.status!r}){detail}", job=self)
        return self


# ---------------------------------------------------------------------------------------------- waiting


#: The first wait between two status checks, and how much each wait grows on the one before.
FIRST_POLL, POLL_GROWTH = 0.5, 1.5


def poll_delays(longest: float) -> Iterator[float]:
    """Seconds to wait between status checks: from min(0.5 s, ``longest``), growing by half each
    time up to ``longest`` (0.5, 0.75, 1.1, 1.7, 2.5, 3.8, 5.7, 8.5, then 10 s with the default).

    A job is seen ending at most half its run time plus 0.5 s (and at most ``longest``) after it
    did (doubling from 1 s: its whole run time plus 1 s), with 9 checks in its first 25 s and one
    per ``longest`` after that.
    """
    if longest <= 0:
        raise ValueError("poll_interval must be positive.")
    delay = min(FIRST_POLL, longest)
    while True:
        yield delay
        delay = min(longest, delay * POLL_GROWTH)


class JobWatch:
    """The decisions of one wait for one job, shared by the polling hook and the trigger.

    :param poll_interval: the longest wait between two checks (they start 0.5 s apart and grow by
        half, :func:`poll_delays`).
    :param end_time: epoch seconds after which the wait gives up (None: never; callers always set
        one, from ``execution_timeout`` or the operator's ``timeout``).
    :param unknown_patience: seconds a status word this package does not know is polled on before
        the wait gives up as if timed out, naming the word (a finished job CARTO describes with a
        new word must not hold a worker slot or a trigger until ``end_time``).
    """

    def __init__(
        self,
        poll_interval: float,
        end_time: float | None = None,
        unknown_patience: float = UNKNOWN_STATUS_PATIENCE,
    ) -> None:
        self.delays = poll_delays(poll_interval)
        self.end_time = end_time
        self.unknown_patience = unknown_patience
        self.timed_out = False
        #: The unknown status word the wait gave up on (None: it did not).
        self.unknown_word: str | None = None
        self._unknown_since: float | None = None
        self._warned: set[str] = set()

    def next_delay(self, job: CartoJob) -> float | None:
        """Seconds to sleep before the next check, or None when the wait is over (the job ended,
        or time ran out: then :attr:`timed_out` is set)."""
        self._warn_unknown(job)
        if job.done:
            log.info("%s ended with status %r", job.describe(), job.status)
            return None
        now = time.time()
        remaining = None if self.end_time is None else self.end_time - now
        if not job.status_known:
            self._unknown_since = now if self._unknown_since is None else self._unknown_since
            patience_left = self.unknown_patience - (now - self._unknown_since)
            if patience_left <= 0:
                self.timed_out, self.unknown_word = True, job.status
                return None
            remaining = patience_left if remaining is None else min(remaining, patience_left)
        else:
            self._unknown_since = None
        if remaining is not None and remaining <= 0:
            self.timed_out = True
            return None
        delay = next(self.delays)
        log.debug("%s is %r; next check in %.1f s", job.describe(), job.status, delay)
        return delay if remaining is None else min(delay, remaining)

    def _warn_unknown(self, job: CartoJob) -> None:
        if not job.status_known and job.status not in self._warned:
            self._warned.add(job.status)
            log.warning(
                "%s has the status %r, which this provider does not know; it is polled on for at most "
                "%g s (unknown_status_patience) until it reports an error or a known status. Tell the "
                'provider what it means with [carto] status_words, e.g. {%r: "success"}.',
                job.describe(),
                job.status,
                self.unknown_patience,
                job.status.lower(),
            )

    def timeout_message(self, job: CartoJob, *, cancelled: bool, ended: Any = None) -> str:
        """What a wait that ran out of time (or of patience with an unknown word) says; ``ended`` is
        what the cancel answered: a job that had already ended (CARTO refused to cancel it) is
        named with its real outcome."""
        if self.unknown_word is not None:
            message = (
                f"{job.describe()} kept the status {self.unknown_word!r}, which this provider does not "
                f"know, for {self.unknown_patience:g} s (unknown_status_patience); say what it means "
                "with [carto] status_words or the operator's status_words"
            )
        else:
            message = f"{job.describe()} was still {job.status or 'running'!r} when the wait's time ran out"
        if isinstance(ended, CartoJob) and ended.done and ended.outcome != CANCELLED:
            return message + f"; CARTO had already ended it {ended.status!r} ({ended.outcome})."
        return message + ("; it has been cancelled." if cancelled else ".")


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class JobEvent:
    """What a trigger sends back to its task: ``status`` is an outcome, ``timeout`` or ``error``;
    ``job`` the job's :meth:`CartoJob.summary` (None when CARTO could not be asked)."""

    status: str
    job_id: str
    message: str
    job: CartoJob | None = None

    def to_json(self) -> dict[str, Any]:
        """The event payload (JSON-safe; no token, no URL query string)."""
        return {
            "status": self.status,
            "job_id": self.job_id,
            "job": self.job.summary() if self.job is not None else None,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, payload: Mapping[str, Any] | None) -> JobEvent:
        """The event back from a payload; raises CartoError for one that is not a CARTO job event."""
        if not payload or "status" not in payload:
            raise CartoError(f"The CARTO trigger sent no usable event: {payload!r}")
        job = payload.get("job")
        return cls(
            status=str(payload["status"]),
            job_id=str(payload.get("job_id")),
            message=str(payload.get("message") or ""),
            job=CartoJob.from_summary(job) if job else None,
        )

    def finished_job(self) -> CartoJob:
        """The job that succeeded; raises CartoJobError, CartoJobTimeout or CartoError otherwise."""
        if self.status == TIMEOUT:  # also when the time ran out before CARTO answered a check
            raise CartoJobTimeout(self.message)
        if self.status == ERROR or self.job is None:
            raise CartoError(f"Lost track of CARTO job {self.job_id!r}: {self.message}")
        return self.job.check()


def import_result(job: CartoJob, destination: str | None = None, *, body: bool = True) -> dict[str, Any]:
    """What an import task returns: its id, status, destination, rows and schema (and CARTO's body)."""
    described = job.summary()["body"]
    result = {
        "job_id": job.job_id,
        "status": job.status,
        "destination": described.get("destination", destination),
        "rows_imported": described.get("rowsImported"),
        "schema": described.get("schema"),
    }
    return {**result, "body": described} if body else result


#: The shapes of a task's return value, by name: a trigger that ends its task itself builds it.
RESULTS: dict[str, Callable[..., Any]] = {
    "ids": lambda job, **_: job.ids(),
    "import": import_result,
    "import_status": lambda job, **fields: import_result(job, **fields, body=False),
}


def job_from_event(event: Mapping[str, Any] | None) -> CartoJob:
    """The finished job a CARTO trigger reported; raises if it failed, timed out or was not followed.

    The one decoder of trigger events, used by the operators and the sensors.
    """
    return JobEvent.from_json(event).finished_job()
