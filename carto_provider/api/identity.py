"""Which task try started a CARTO job: the tags a job carries, and how a retry finds its job again.

Every SQL job is created with CARTO ``metadata`` naming the task (``dag_id``, ``task_id``, ``run_id``,
``map_index``, ``try_number``) and a fingerprint of what it runs. ``GET /v3/sql/jobs`` lists jobs with
their metadata, so a retried or restarted task finds the job an earlier try of it started in the
same run (same fingerprint, a lower try number, created since the run started).

Imports carry no metadata: their id is kept in Airflow's ``task_state_store`` (the store behind
``ResumableJobMixin``, Airflow 3.3+). Older Airflow clears a task's XComs at each try, so nothing
outlives a try there: a *running* import is found again in CARTO's import list by connection, URL
and destination (a finished one cannot be told apart from an earlier run's, so it is not reused).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from carto_provider.api.jobs import JobKind

log = logging.getLogger(__name__)

#: ``metadata["source"]`` of the jobs this provider starts.
SOURCE = "airflow-provider-carto"
#: How far before its run's date a task's earlier job may have been created (clock skew, queues).
LISTING_MARGIN = dt.timedelta(days=1)
#: How far before its run's start a task's earlier job may have been created (clock skew).
START_MARGIN = dt.timedelta(minutes=5)


def fingerprint(*parts: Any) -> str:
    """A short, stable digest of what a job runs (its SQL and parameters): a retry reattaches only to
    a job that runs the same thing."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def created_at(item: Any) -> dt.datetime | None:
    """The ``createdAt`` of a job or import as CARTO lists it (ISO 8601), or None."""
    try:
        return _utc(dt.datetime.fromisoformat(str(item.get("createdAt")).replace("Z", "+00:00")))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class TaskIdentity:
    """One try of one task instance, read from the Airflow context."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    run_at: dt.datetime | None = None
    run_started: dt.datetime | None = None
    store: Any = None  # Airflow 3.3's task_state_store, when there is one

    @classmethod
    def of(cls, context: Any) -> TaskIdentity | None:
        """The identity of the running task, or None outside a task run (e.g. ``execute({})``)."""
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is None or not getattr(ti, "run_id", None):
            return None
        dag_run = context.get("dag_run")
        run_at = None
        for name in ("run_after", "logical_date", "execution_date", "start_date"):
            run_at = run_at or getattr(dag_run, name, None)
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=str(ti.dag_id),
            task_id=str(ti.task_id),
            run_id=str(ti.run_id),
            map_index=-1 if map_index is None else int(map_index),
            try_number=int(getattr(ti, "try_number", 0) or 0),
            run_at=_utc(run_at),
            run_started=_utc(getattr(dag_run, "start_date", None)),
            store=context.get("task_state_store"),
        )

    def task_tags(self, job_fingerprint: str) -> dict[str, Any]:
        """The metadata every try of this task instance shares (what a retry searches by)."""
        return {
            "source": SOURCE,
            "dag_id": self.dag_id,
            "task_id": self.task_id,
            "run_id": self.run_id,
            "map_index": self.map_index,
            "fingerprint": job_fingerprint,
        }

    def metadata(self, job_fingerprint: str) -> dict[str, Any]:
        """The CARTO ``metadata`` of a job this try starts."""
        return {**self.task_tags(job_fingerprint), "try_number": self.try_number}

    def listed_since(self) -> dt.datetime | None:
        """The earliest creation time of a job of this run execution worth listing: the run's start
        (a cleared run restarts, and then runs its jobs anew), else its date."""
        if self.run_started is not None:
            return self.run_started - START_MARGIN
        return None if self.run_at is None else self.run_at - LISTING_MARGIN

    def is_earlier_try(self, metadata: Any) -> bool:
        """Whether a job's metadata names an earlier try of this task instance."""
        earlier = (metadata or {}).get("try_number")
        try:
            return earlier is not None and int(earlier) < self.try_number
        except (TypeError, ValueError):
            return False

    def _key(self, kind: JobKind) -> str:
        return f"carto_{kind.label.replace(' ', '_')}_id"

    def remember(self, kind: JobKind, job_id: str) -> None:
        """Keep the job id in the task state store (Airflow 3.3+) for a later try. Best effort: the
        job has started, so a store that fails is logged, never the task's failure."""
        if self.store is None:
            return
        try:
            self.store.set(self._key(kind), job_id)
        except Exception as exc:
            log.warning("Could not keep CARTO %s %r for a retry to find: %s", kind.label, job_id, exc)

    def recalled(self, kind: JobKind) -> str | None:
        """The job id an earlier try kept, if the task state store has one."""
        if self.store is None:
            return None
        try:
            value = self.store.get(self._key(kind))
        except Exception as exc:
            log.warning("Could not read the task state store (%s): starting a new CARTO %s", exc, kind.label)
            return None
        return str(value) if value else None
