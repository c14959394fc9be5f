"""``CartoActivityHook``: CARTO's Activity Data exports (usage and audit logs) on the accounts host.

Needs an OAuth access token of an Admin or Superadmin user (an ``m2m`` connection of such a user;
CARTO refuses API access tokens here). Exports are jobs of kind
:data:`~carto_provider.api.jobs.ACTIVITY`: read, waited for and cancelled like SQL jobs.
"""

from __future__ import annotations

import datetime as dt
import logging

from carto_provider.api.activity import activity_body, activity_path, download_urls
from carto_provider.api.jobs import ACTIVITY, CartoJob
from carto_provider.errors import ConfigurationError
from carto_provider.hooks.api import CartoAPIHook

log = logging.getLogger(__name__)


class CartoActivityHook(CartoAPIHook):
    """Starts and follows Activity Data exports (``/activity-data-jobs`` on CARTO's accounts host)."""

    def create_activity_export(
        self, start: dt.date, end: dt.date, *, category: str = "activity", file_format: str = "csv"
    ) -> CartoJob:
        """Start exporting the days ``start`` to ``end`` (under 60 days) of ``category`` logs; sent
        at most once (repeated only when CARTO refused it)."""
        body = activity_body(start, end, category=category, file_format=file_format)
        if self.settings.auth_type == "api_token":
            raise ConfigurationError(
                f"Connection {self.carto_conn_id!r} holds an API access token: CARTO's Activity Data API "
                "takes an OAuth access token of an Admin or Superadmin user (an m2m connection)."
            )
        reply = self.accounts_transport().request_json(
            "POST", activity_path(), json=body, at_most_once=True, policy=self.at_most_once_retry
        )
        job = CartoJob.from_response(ACTIVITY, reply)
        log.info("Started %s for %s to %s (%s)", job.describe(), start, end, category)
        return job

    def activity_download_urls(self, job_id: str) -> list[str]:
        """The download URLs of a finished export (signed: never log or return them)."""
        return download_urls(self.get(ACTIVITY, job_id).body)
