"""``/activity-data-jobs``: CARTO's Activity Data exports (on CARTO's accounts host, no ``/v3``).

``POST /activity-data-jobs`` (``startDate``, ``endDate`` as ``YYYY-MM-DD``, under 60 days;
``category``, ``format`` csv) starts an export that takes :attr:`ActivitySettings.duration` seconds,
then offers one CSV of generated activity rows (``ts, user_id, metric, amount``, the columns of
CARTO's ``apiUsage`` notes) at ``urls``; ``GET /activity-data-jobs/{id}`` reads it with CARTO's
capitalised status words (``Pending``, ``Running``, ``Success``, ``Failure``, ``Cancelled``);
``DELETE /activity-data-jobs/{id}/cancel`` cancels it (a finished export answers 400, as CARTO's
Postman catalog says). OAuth tokens only (the emulator counts every M2M client as an admin). The body's
field names and the URL field are not published by CARTO: these are the emulator's (and the client's)
choice.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request

from carto_provider.testing.routes import state_of
from carto_provider.testing.routes.background import BackgroundJob, JobFailure, JobStore, new_job_id
from carto_provider.testing.routes.common import EmulatorHTTPError, require_api_token
from carto_provider.testing.routes.imports import serve_file
from carto_provider.testing.routes.sql import json_body
from carto_provider.testing.state import EmulatorState

router = APIRouter()

WORDS = {
    "pending": "Pending",
    "running": "Running",
    "success": "Success",
    "failure": "Failure",
    "cancelled": "Cancelled",
}
METRICS = ("sql_api_request", "maps_api_request", "lds_geocoding", "import")


@dataclass
class ActivitySettings:
    """How the emulated Activity Data API behaves."""

    duration: float = 1.0
    rows_per_day: int = 5


@dataclass
class ActivityAPI:
    """The Activity Data state of one emulator."""

    settings: ActivitySettings = field(default_factory=ActivitySettings)
    jobs: JobStore = field(default_factory=JobStore)


def activity_api(state: EmulatorState) -> ActivityAPI:
    """The emulator's Activity Data state, created on first use."""
    return state.extension("activity_api", ActivityAPI)


def _day(body: dict[str, Any], name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(body.get(name)))
    except ValueError:
        raise EmulatorHTTPError(400, f"{name} must be a date YYYY-MM-DD") from None


def activity_csv(start: dt.date, end: dt.date, rows_per_day: int) -> str:
    """Generated activity rows, the same for the same days."""
    lines = ["ts,user_id,metric,amount"]
    day = start
    while day <= end:
        rng = random.Random(day.toordinal())  # noqa: S311 - test data
        for i in range(rows_per_day):
            user, metric, amount = rng.randint(1, 4), rng.choice(METRICS), rng.randint(1, 50)
            lines.append(f"{day.isoformat()}T{10 + i:02d}:00:00Z,user_{user},{metric},{amount}")
        day += dt.timedelta(days=1)
    return "\n".join(lines) + "\n"


@router.post("/activity-data-jobs")
async def create_export(request: Request) -> dict[str, Any]:
    """Start an export of the days ``startDate`` to ``endDate``."""
    issued = require_api_token(request)
    state = state_of(request)
    body = await json_body(request)
    start, end = _day(body, "startDate"), _day(body, "endDate")
    if end < start or (end - start).days >= 60:
        raise EmulatorHTTPError(400, "The date range must be under 60 days")
    if body.get("format", "csv") != "csv":
        raise EmulatorHTTPError(400, "The CARTO emulator exports csv only")
    api = activity_api(state)
    job = BackgroundJob(
        new_job_id("activity"),
        api.settings.duration,
        {"startDate": str(start), "endDate": str(end), "category": body.get("category", "activity")},
    )
    base = str(request.base_url).rstrip("/")

    def work() -> dict[str, Any]:
        if start > dt.date.today():
            raise JobFailure("The range ends after the most recent ready data")
        path = serve_file(
            state, f"activity/{job.job_id}.csv", activity_csv(start, end, api.settings.rows_per_day)
        )
        return {"urls": [f"{base}{path}?X-Amz-Signature=emulator-signed-{job.job_id}"]}

    api.jobs.add(job)
    state.record("activity_export", issued.subject)
    job.start(work)
    return job.render(WORDS)


def _export(request: Request, job_id: str) -> BackgroundJob:
    require_api_token(request)
    job = activity_api(state_of(request)).jobs.get(job_id)
    if job is None:
        raise EmulatorHTTPError(404, f"Activity data job not found: {job_id}")
    return job


@router.get("/activity-data-jobs/{job_id}")
async def get_export(request: Request, job_id: str) -> dict[str, Any]:
    """An export's state (with its ``urls`` once it succeeded)."""
    return _export(request, job_id).render(WORDS)


@router.delete("/activity-data-jobs/{job_id}/cancel")
async def cancel_export(request: Request, job_id: str) -> dict[str, Any]:
    """Cancel an export; one already finished answers 400."""
    job = _export(request, job_id)
    if not job.cancel():
        raise EmulatorHTTPError(400, f"Activity data job {job_id} has already finished")
    state_of(request).record("activity_cancelled", job_id)
    return job.render(WORDS)
