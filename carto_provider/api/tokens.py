"""CARTO's Tokens API (``/v3/tokens``) as data: request bodies and the tokens it returns.

Shapes, in CARTO's order of authority: the docs (Tokens API reference: ``POST/GET /v3/tokens``,
``GET/PATCH/DELETE /v3/tokens/{token}``, "These endpoints need an OAuth Access Token, not an API
Access Token"), CARTO's backend guide (``carto-for-developers-guides``
``integrate-existing-app/backend/index.ts``: body ``{grants, referers, allowed_apis}``, reply
``{token, error, description}``) and CARTO's CLI notes (``allowed_apis`` words ``sql``, ``maps``,
``imports``, ``lds``; the reply also has ``id`` and ``grants``). Not published: the list's wrapper,
the format of ``expiration_date`` (sent here as ISO 8601 UTC) and the DELETE reply; replies are read
tolerantly. No I/O and no Airflow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from carto_provider.api.untrusted import path_segment
from carto_provider.errors import CartoError

TOKENS_PATH = "/v3/tokens"
#: The APIs an API access token may be allowed to call (CARTO's CLI: ``--apis sql,maps,imports,lds``).
ALLOWED_APIS = ("sql", "maps", "imports", "lds")

GrantLike = Mapping[str, str] | Sequence[str]


def token_path(token: str | None = None) -> str:
    """``/v3/tokens[/{token}]`` (the token a checked path segment: an API access token is a JWT)."""
    return (
        TOKENS_PATH
        if token is None
        else f"{TOKENS_PATH}/{path_segment(token, 'token', max_length=8192, secret=True)}"
    )


def grant(connection_name: str, source: str = "*") -> dict[str, str]:
    """One grant: ``source`` is a fully qualified table, ``project.dataset.*``, a SQL query, or ``*``
    (everything on the connection), as CARTO's Tokens API docs say."""
    if not str(connection_name or "").strip() or not str(source or "").strip():
        raise ValueError("A token grant needs a CARTO connection name and a source (a table, a query or *).")
    return {"connection_name": str(connection_name), "source": str(source)}


def grants_of(grants: Iterable[GrantLike]) -> list[dict[str, str]]:
    """Grants given as ``{"connection_name", "source"}`` mappings or ``(connection, source)`` pairs."""
    found = []
    for item in grants:
        if isinstance(item, Mapping):
            found.append(grant(item.get("connection_name", ""), item.get("source", "")))
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2:
            found.append(grant(item[0], item[1]))
        else:
            raise ValueError(
                f"A token grant is {{'connection_name', 'source'}} or (connection, source), not {item!r}"
            )
    if not found:
        raise ValueError("An API access token needs at least one grant.")
    return found


def expiration_text(expiration: dt.datetime | dt.timedelta | str | None) -> str | None:
    """``expiration_date`` as ISO 8601 UTC with milliseconds (a timedelta counts from now)."""
    if expiration is None or isinstance(expiration, str):
        return expiration or None
    when = (
        dt.datetime.now(dt.timezone.utc) + expiration if isinstance(expiration, dt.timedelta) else expiration
    )
    if when.tzinfo is None:
        raise ValueError("A token expiration datetime needs a time zone (e.g. UTC).")
    return when.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def token_body(
    grants: Iterable[GrantLike],
    allowed_apis: Iterable[str],
    *,
    referers: Iterable[str] = (),
    expiration: dt.datetime | dt.timedelta | str | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v3/tokens``; without ``expiration`` the token never expires (CARTO docs)."""
    apis = sorted({str(a).strip().lower() for a in allowed_apis})
    unknown = sorted(set(apis) - set(ALLOWED_APIS))
    if not apis or unknown:
        raise ValueError(
            f"allowed_apis must be a non-empty subset of {list(ALLOWED_APIS)}, not {unknown or apis}"
        )
    body: dict[str, Any] = {
        "grants": grants_of(grants),
        "referers": [str(r) for r in referers],
        "allowed_apis": apis,
    }
    when = expiration_text(expiration)
    if when:
        body["expiration_date"] = when
    return body


@dataclass(frozen=True)
class APIToken:
    """An API access token as the Tokens API described it; ``token`` is never shown by ``repr``."""

    token: str = field(repr=False)
    token_id: str | None = None
    grants: list[dict[str, Any]] = field(default_factory=list)
    allowed_apis: list[str] = field(default_factory=list)
    referers: list[str] = field(default_factory=list)
    expiration_date: str | None = None

    @classmethod
    def from_response(cls, body: Any) -> APIToken:
        """Read a token reply (only ``token`` is required)."""
        if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not body["token"]:
            fields = sorted(body) if isinstance(body, dict) else type(body).__name__
            raise CartoError(f"CARTO's Tokens API answered without a token (fields: {fields}).")

        def listed(name: str) -> list[Any]:
            value = body.get(name)
            return list(value) if isinstance(value, list) else []

        token_id = body.get("id")
        expiration = body.get("expiration_date") or body.get("expirationDate")
        return cls(
            token=body["token"],
            token_id=str(token_id) if token_id else None,
            grants=[g for g in listed("grants") if isinstance(g, dict)],
            allowed_apis=[str(a) for a in listed("allowed_apis")],
            referers=[str(r) for r in listed("referers")],
            expiration_date=str(expiration) if expiration else None,
        )

    def summary(self) -> dict[str, Any]:
        """What may be shown and pushed to XCom: everything but the token itself."""
        return {
            "id": self.token_id,
            "grants": self.grants,
            "allowed_apis": self.allowed_apis,
            "referers": self.referers,
            "expiration_date": self.expiration_date,
        }


def tokens_of(body: Any) -> list[APIToken]:
    """The tokens of a list reply: a bare array or ``{"data" | "tokens" | "items": [...]}``
    (the wrapper is not published); entries without a token are skipped."""
    items = body
    if isinstance(body, dict):
        items = next((body[k] for k in ("data", "tokens", "items") if isinstance(body.get(k), list)), [])
    found = []
    for item in items if isinstance(items, list) else []:
        try:
            found.append(APIToken.from_response(item))
        except CartoError:
            continue
    return found
