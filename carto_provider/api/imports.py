"""CARTO's Imports API as data: paths and request bodies (``POST /v3/imports``).

No I/O and no Airflow here; an import is a job kind of :mod:`carto_provider.api.jobs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from carto_provider.api.sql import CARTO_DW
from carto_provider.api.untrusted import path_segment


def import_path(job_id: str | None = None, action: str | None = None) -> str:
    """``/v3/imports[/{jobId}[/{action}]]``."""
    parts = [path_segment(p, "import id") for p in (job_id, action) if p]
    return "/".join(["/v3/imports", *parts])


def import_body(
    *,
    url: str,
    destination: str,
    connection: str = CARTO_DW,
    overwrite: bool = False,
    autoguessing: bool = True,
    schema: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v3/imports``.

    ``schema`` (columns ``{"name", "type"}``, as ``POST /v3/imports/preview`` returns them) is only
    honoured by CARTO with ``autoguessing`` off (CARTO docs), so giving both is refused here.
    """
    for name, value in (("url", url), ("destination", destination), ("connection", connection)):
        if not value or not str(value).strip():
            raise ValueError(f"A CARTO import needs a {name}.")
    body: dict[str, Any] = {
        "connection": connection,
        "url": url,
        "destination": destination,
        "overwrite": bool(overwrite),
        "autoguessing": bool(autoguessing),
    }
    if schema is not None:
        if autoguessing:
            raise ValueError(
                "CARTO ignores an import schema while autoguessing is on: pass autoguessing=False with it."
            )
        columns = [dict(column) for column in schema]
        if not columns or any(not c.get("name") or not c.get("type") for c in columns):
            raise ValueError('An import schema is a list of columns {"name": ..., "type": ...}.')
        body["schema"] = columns
    return body
