"""CARTO's Activity Data API (usage and audit logs) as data: the export job's body and results.

CARTO's docs (Activity Data API reference): ``POST /activity-data-jobs`` creates an export, ``GET
/activity-data-jobs/{jobId}`` reads it, ``DELETE /activity-data-jobs/{jobId}/cancel`` cancels it; these
"live on the accounts host — https://accounts.app.carto.com — not on your regional API Base URL, and
their paths have no /v3 prefix", and need an OAuth access token of an Admin or Superadmin user. The
range "must be under 60 days"; poll "until status is success, then use the returned download URLs"
(CSV or Parquet). Status words ``Pending``, ``Running``, ``Success``, ``Failure``, ``Cancelled`` (the
Postman catalog) against lowercase ``success`` (the docs' text): compared case-insensitively by the
job model. **Not published**: the body's field names (sent as ``startDate``, ``endDate``, ``format``,
``category``, after CARTO's CLI flags), the download URLs' field and their expiry; read tolerantly.
No I/O and no Airflow.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from carto_provider.api.untrusted import path_segment

ACTIVITY_PATH = "/activity-data-jobs"
#: CARTO: "The range must be under 60 days".
MAX_RANGE = dt.timedelta(days=60)
FORMATS = ("csv", "parquet")
#: CARTO's CLI ``--category`` words.
CATEGORIES = ("activity", "apiUsage", "userList", "groupList")
_URL_FIELDS = ("urls", "downloadUrls", "download_urls", "files", "results")


def activity_path(job_id: str | None = None, action: str | None = None) -> str:
    """``/activity-data-jobs[/{jobId}[/{action}]]``."""
    return "/".join([ACTIVITY_PATH, *(path_segment(p, "activity job id") for p in (job_id, action) if p)])


def accounts_origin(accounts_url: str) -> str:
    """The accounts host (``https://accounts.app.carto.com``) of an accounts service URL."""
    parts = urlsplit(accounts_url)
    return f"{parts.scheme}://{parts.netloc}"


def activity_body(
    start: dt.date, end: dt.date, *, category: str = "activity", file_format: str = "csv"
) -> dict[str, Any]:
    """The body of ``POST /activity-data-jobs`` for the days ``start`` to ``end`` (inclusive)."""
    if end < start:
        raise ValueError(f"The activity data range ends ({end}) before it starts ({start}).")
    if end - start >= MAX_RANGE:
        raise ValueError(
            f"CARTO exports activity data for ranges under 60 days, not {(end - start).days + 1}."
        )
    if file_format not in FORMATS or category not in CATEGORIES:
        raise ValueError(f"format must be one of {FORMATS} and category one of {CATEGORIES}.")
    return {
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "format": file_format,
        "category": category,
    }


def download_urls(body: Any) -> list[str]:
    """The download URLs of a finished export: a list of strings or of ``{url}`` objects under one
    of the usual names, at the top or under ``result``."""
    if not isinstance(body, dict):
        return []
    result = body.get("result")
    for where in (body, result if isinstance(result, dict) else {}):
        for name in _URL_FIELDS:
            value = where.get(name)
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                continue
            found = [v if isinstance(v, str) else v.get("url") for v in value if isinstance(v, str | dict)]
            urls = [u for u in found if isinstance(u, str) and (u.startswith("https://") or _loopback(u))]
            if urls:
                return urls
    return []


def _loopback(url: Any) -> bool:
    """The emulator's plain-http download URLs."""
    return isinstance(url, str) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
