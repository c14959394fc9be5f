"""The emulator's unpleasant modes: where CARTO is (or may be) less convenient than a fake would be.

One switch per behaviour, all in :class:`Quirks`. The defaults are CARTO-faithful where CARTO's own
client code or docs say what CARTO does (``/work/notes/carto-evidence.md`` names each source), and
the convenient answer where CARTO's behaviour is not published (switch it on to test the worst case).

Switch them:

* per emulator: ``CartoEmulator(quirks={"job_id_differs": True})`` or ``emulator.set_quirks(...)``;
* per process (``carto-provider emulator``, ``make demo``): ``CARTO_EMULATOR_QUIRKS`` as JSON,
  e.g. ``{"status_words": "warehouse", "connections_page_size": 1}``;
* over HTTP: ``POST /emulator/quirks`` with a JSON object (answers the quirks now in force).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_VAR = "CARTO_EMULATOR_QUIRKS"

#: Status words a warehouse behind CARTO uses for pending, running, success, failure, cancelled
#: (Snowflake's ``QUEUED``/``FAILED_WITH_ERROR``/``ABORTED``, Databricks' ``SUCCEEDED``).
WAREHOUSE_WORDS: Mapping[str, str] = {
    "pending": "QUEUED",
    "running": "RUNNING",
    "success": "SUCCEEDED",
    "failure": "FAILED_WITH_ERROR",
    "cancelled": "ABORTED",
}


@dataclass
class Quirks:
    """Each unpleasant mode of the emulator (see the module doc for how to switch them)."""

    #: ``INFORMATION_SCHEMA`` answers on ``carto_dw``. CARTO's field notes (CartoDB/agent-skills,
    #: ``migrate-data/lessons.md``): any INFORMATION_SCHEMA query on carto_dw is a permission error.
    information_schema_on_carto_dw: bool = False
    #: A job read's ``jobId`` differs from the create reply's ``externalId`` (the id that is polled).
    #: @carto/ps-services 1.1.1 names them apart and never says they are equal (not published).
    job_id_differs: bool = False
    #: SQL job status words: ``"carto"`` (pending, running, success, failure, cancelled) or
    #: ``"warehouse"`` (:data:`WAREHOUSE_WORDS`); ps-services types ``status`` as a plain string.
    status_words: str = "carto"
    #: Job metadata stored (and listed) with every value as a string: CARTO's only examples are
    #: strings, and ps-services' listJobs compares with ``===``.
    metadata_as_strings: bool = True
    #: The next N job or import creations are carried out, then answered 503 (a CDN in front of
    #: CARTO, Fastly per @carto/api-client, can fail after the origin received the POST).
    created_then_503: int = 0
    #: Cancelling a finished SQL job or import answers 400 (as CARTO's Activity Data jobs are said
    #: to; not published for SQL jobs or imports).
    cancel_finished_400: bool = False
    #: The field naming a connection's provider in ``GET /v3/connections``: ``provider`` (CARTO's
    #: CLI output) or ``providerId`` (@carto/api-client's types).
    connections_provider_field: str = "provider"
    #: Page ``GET /v3/connections`` (``{"data": [...], "next": url}``, ``page``/``pageSize``); None:
    #: a bare array. Paging is not published.
    connections_page_size: int | None = None
    #: API errors with ``error`` as a list and a ``hint`` (the shape @carto/api-client's
    #: ``ModelErrorResponse`` allows: ``error?: string | string[]; hint?; column_name?``).
    error_lists: bool = False
    #: Row keys upper-cased on connections whose provider is ``snowflake`` (@carto/api-client's
    #: ``normalizeObjectKeys``: Snowflake answers upper-case column names).
    snowflake_upper_case: bool = True
    #: Seconds a ``/query`` may take before CARTO gives up (CARTO's docs: one minute).
    query_time_limit: float = 60.0
    #: The most ``queryParameters`` one query or job takes (BigQuery's quota: 10,000 parameters).
    max_query_parameters: int = 10_000

    def update(self, changes: Mapping[str, Any]) -> Quirks:
        """Apply ``changes`` (unknown names are refused) and return self."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"Unknown emulator quirks {unknown}; known: {sorted(known)}")
        for name, value in changes.items():
            setattr(self, name, value)
        return self

    def as_dict(self) -> dict[str, Any]:
        """The quirks in force, as JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Quirks:
        """The defaults, changed by ``$CARTO_EMULATOR_QUIRKS`` (a JSON object) when set."""
        raw = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
        changes = json.loads(raw) if raw else {}
        if not isinstance(changes, dict):
            raise ValueError(f"{ENV_VAR} must be a JSON object")
        return cls().update(changes)


def quirks_of(state: Any) -> Quirks:
    """The quirks of an emulator's state."""
    quirks: Quirks = state.quirks
    return quirks
