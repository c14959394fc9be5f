"""What a CARTO answer means: its JSON body, its error fields and the error to raise, told once.

Every HTTP call of the package (the API transport, the auth flow, :meth:`CartoAuth.request`) reads
answers through these helpers, so CARTO's error text reaches an exception the same way everywhere:
bounded JSON (:func:`carto_provider.api.untrusted.parse_json`), secrets redacted, URLs without their
query string or credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from carto_provider.api.untrusted import UnusableBody, location_host, parse_json, redact
from carto_provider.errors import CartoAPIError

#: What to check when a CARTO API gave no answer at all.
UNREACHABLE_HINT = "Check the API base URL and the network."


def redact_url(url: str) -> str:
    """``url`` for logs and messages: no query string or fragment (CARTO examples put tokens in
    ``access_token=``), a password in the user info replaced by ``***``."""
    parts = urlsplit(str(url).strip())
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostport = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        # A lone "redis://word@host" is often meant as the password: hide it too.
        netloc = f"{user}:***@{hostport}" if has_password else f"***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def response_body(response: Any) -> Any:
    """The JSON body of a response, bounded (see :func:`~carto_provider.api.untrusted.parse_json`),
    or None when it is not usable JSON."""
    content = getattr(response, "content", None)
    try:
        return parse_json(content) if isinstance(content, bytes) else response.json()
    except (UnusableBody, RuntimeError, ValueError):
        return None


def response_json(response: Any) -> Any:
    """The JSON body of a successful response (``{}`` when empty), or a clear error (also for JSON
    nested deeper than the interpreter can parse: never a ``RecursionError``)."""
    if not response.content:
        return {}
    try:
        return response.json()
    except (ValueError, RecursionError) as exc:
        method = getattr(getattr(response, "request", None), "method", "")
        what = "JSON nested too deeply" if isinstance(exc, RecursionError) else "no JSON"
        raise CartoAPIError(
            f"CARTO answered {method} {redact_url(str(response.url))} with HTTP {response.status_code} "
            f"but {what}.",
            status=response.status_code,
        ) from None


def _error_text(value: Any) -> str | None:
    """One error field as text: a list joined with ``; ``, ``{code, msg}`` as ``code: msg``."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return "; ".join(t for t in (_error_text(v) for v in value) if t) or None
    if isinstance(value, dict):
        return ": ".join(str(value[k]) for k in ("code", "msg", "message") if value.get(k)) or None
    return str(value)


def error_fields(response: Any, secrets: Iterable[str | None] = ()) -> tuple[str | None, str | None]:
    """CARTO's ``error`` and a description from a JSON error body, each with every secret in
    ``secrets`` redacted; ``(None, None)`` when the body is not such an object.

    ``error`` may be a string or a list (joined), and comes with optional ``hint`` and
    ``column_name`` (@carto/api-client 0.5.34 ``src/models/common.ts`` ``ModelErrorResponse``,
    "Source: @carto/react-api"); an error object ``{code, msg}`` gives ``"code: msg"``; the Tokens
    API sends ``description`` (CARTO's carto-for-developers-guides
    ``integrate-existing-app/backend/index.ts``), OAuth servers ``error_description``. The
    description joins whichever of these came, hint and column named.
    """
    body = response_body(response)
    if not isinstance(body, dict):
        return None, None
    parts = [
        _error_text(body.get("error_description") or body.get("description") or body.get("message")),
        *(
            f"{label}: {text}"
            for label, key in (("hint", "hint"), ("column", "column_name"))
            if (text := _error_text(body.get(key)))
        ),
    ]
    error, description = _error_text(body.get("error")), "; ".join(p for p in parts if p) or None
    secrets = list(secrets)
    return (
        redact(error, secrets) if error is not None else None,
        redact(description, secrets) if description is not None else None,
    )


def error_detail(response: Any, secrets: Iterable[str | None] = ()) -> str:
    """``"error: description"`` of a JSON error body, else the HTTP reason."""
    error, description = error_fields(response, secrets)
    reason = getattr(response, "reason_phrase", None) or getattr(response, "reason", None)
    return ": ".join(x for x in (error, description) if x) or redact(reason or "no error body", ())


_STATUS_HINTS = {
    401: " The API at {base} refused the token: check that the API base URL is your "
    "account's region (CARTO Workspace > Developers).",
    403: " The user behind these credentials lacks permission for this resource.",
    404: " Check the API base URL and the resource name.",
}


def api_error(
    response: Any,
    *,
    api_base_url: str,
    secrets: Iterable[str | None] = (),
    hints: Mapping[int, str] | None = None,
) -> CartoAPIError:
    """The :class:`CartoAPIError` of a failed CARTO API answer: CARTO's ``error`` text (``secrets``
    redacted), the status and what to check (``hints``: advice per status replacing the default,
    e.g. for API access tokens)."""
    secrets = list(secrets)
    error, description = error_fields(response, secrets)
    detail = error_detail(response, secrets)
    url = redact_url(str(response.url or ""))
    status = response.status_code
    if 300 <= status < 400:
        target = location_host(getattr(response, "headers", {}))
        hint = (
            f" It redirects to host {target!r}; redirects are never followed "
            "(the token is sent to the API base URL only): check the API base URL."
        )
    else:
        hint = (hints or {}).get(status) or _STATUS_HINTS.get(status, "").format(base=api_base_url)
    method = response.request.method if response.request is not None else ""
    return CartoAPIError(
        f"CARTO API {method} {url} failed (HTTP {status}: {detail}).{hint}",
        status=status,
        error=error or description,
        url=url,
    )


def unreachable_message(what: str, *, timed_out: bool, hint: str) -> str:
    """``"<what> timed out|could not be reached after several attempts. <hint>"``."""
    kind = "timed out" if timed_out else "could not be reached"
    return f"{what} {kind} after several attempts. {hint}"
