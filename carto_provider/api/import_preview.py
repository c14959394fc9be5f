"""CARTO's import preview (``POST /v3/imports/preview``) as data: its body and a tolerant reader.

CARTO's docs (Imports API): "preview the import first, adjust the columns it returns, then create the
job with ``autoguessing: false`` and your schema. Sending a schema while autoguessing is on has no
effect." **Not published**: the preview's request and reply fields. The body sent here is the import's
own (``connection``, ``url``, and ``destination`` when known); the columns are read from ``schema``,
``columns`` or ``fields`` (each ``{name, type}``), and sample rows from ``rows``/``data``/``preview``.
No I/O and no Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from carto_provider.errors import CartoError

PREVIEW_PATH = "/v3/imports/preview"

Column = dict[str, str]
#: How a DAG adjusts a previewed schema: ``{column: type}`` overrides, or a function of the columns.
SchemaAdjustment = Mapping[str, str] | Callable[[list[Column]], Sequence[Mapping[str, str]]]


def preview_body(url: str, connection: str, destination: str | None = None) -> dict[str, Any]:
    """The body of ``POST /v3/imports/preview``."""
    if not str(url or "").strip() or not str(connection or "").strip():
        raise ValueError("An import preview needs a url and a connection.")
    body: dict[str, Any] = {"connection": connection, "url": url}
    if destination:
        body["destination"] = destination
    return body


@dataclass(frozen=True)
class ImportPreview:
    """What CARTO guessed: ``schema`` columns ``{"name", "type"}`` and a few sample ``rows``."""

    schema: list[Column]
    rows: list[Any] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_response(cls, body: Any) -> ImportPreview:
        """Read a preview reply; one without columns is an error (nothing could be imported from it)."""
        if not isinstance(body, dict):
            raise CartoError(f"CARTO answered the import preview with {type(body).__name__}, not an object.")
        raw: list[Any] = next(
            (body[k] for k in ("schema", "columns", "fields") if isinstance(body.get(k), list)), []
        )
        columns = [
            {"name": str(c["name"]), "type": str(c["type"])}
            for c in raw
            if isinstance(c, dict) and c.get("name") and c.get("type")
        ]
        if not columns:
            raise CartoError(f"CARTO's import preview has no columns (fields: {sorted(body)}).")
        rows: list[Any] = next(
            (body[k] for k in ("rows", "data", "preview") if isinstance(body.get(k), list)), []
        )
        return cls(columns, rows[:100], {k: v for k, v in body.items() if k != "url"})

    def adjusted(self, adjustment: SchemaAdjustment | None) -> list[Column]:
        """The columns after ``adjustment`` (``{name: type}`` overrides must name previewed columns)."""
        if adjustment is None:
            return [dict(c) for c in self.schema]
        if callable(adjustment):
            return [{"name": str(c["name"]), "type": str(c["type"])} for c in adjustment(self.adjusted(None))]
        names = {c["name"] for c in self.schema}
        unknown = sorted(set(adjustment) - names)
        if unknown:
            raise ValueError(f"The schema adjustment names columns the preview does not have: {unknown}")
        return [{"name": c["name"], "type": str(adjustment.get(c["name"], c["type"]))} for c in self.schema]
