"""Reading what a server sent, without trusting it: bounded JSON, redacted text, refused redirects.

Every answer of the auth server, the accounts service and the API passes through here before it
becomes a token, a message or a log line:

* :func:`parse_json` refuses bodies above :data:`MAX_BODY_BYTES` (1 MiB) and nesting deeper than
  :data:`MAX_JSON_DEPTH` (a token answer is one flat object), instead of spending memory or raising
  ``RecursionError``;
* :func:`redact` replaces every secret the caller knows (client secret, token, code, verifier, also
  URL- and JSON-encoded) with ``***``: a server that echoes the request cannot leak it into a message;
* :func:`redirect_error` turns a 3xx into a clear error naming the ``Location`` host: the caller never
  follows it, so a secret is sent once, to the configured host only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from carto_provider.errors import ConfigurationError, CredentialsError

#: No token, account or error answer comes anywhere near this.
MAX_BODY_BYTES = 1024 * 1024
#: A token answer is one flat object; error bodies nest a level or two.
MAX_JSON_DEPTH = 16
#: Longest server text quoted in a message.
MAX_QUOTED = 300
#: Longest message (ours, quoting server text) stored in an event, an exception or a log line.
MAX_MESSAGE = 2000
REDACTED = "***"
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")


class UnusableBody(ValueError):
    """A body too large, too deeply nested or not JSON; the message says which (no body text)."""


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """True when arrays/objects in ``raw`` nest deeper than ``limit`` (strings are skipped)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # cannot be deeper than the number of openers: skip the scan
    depth, in_string, escaped = 0, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSERS:
            depth -= 1
    return False


def parse_json(raw: bytes, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``raw`` decoded as JSON, or :class:`UnusableBody` when too large, too deep or not JSON."""
    if len(raw) > max_bytes:
        raise UnusableBody(f"the answer is larger than {max_bytes // 1024} KiB")
    if json_depth_exceeds(raw, max_depth):
        raise UnusableBody(f"the answer nests deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise UnusableBody("the answer is not JSON") from None


def _forms(secret: str) -> set[str]:
    """The ways a secret may come back in a server's text: as sent, URL- and JSON-encoded."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def sanitize(text: str | None, secrets: Iterable[str | None] = (), *, limit: int = MAX_MESSAGE) -> str:
    """The one sanitiser of server text (API and job errors, trigger events, CLI output, log lines):
    every known secret (in every encoding of :func:`_forms`) replaced by ``***``, anything not
    printable (newlines, terminal escapes, bidi controls) dropped, and the length capped at ``limit``
    characters. Secrets are replaced before the cap, so a cut cannot expose part of one."""
    raw = str(text or "")
    cut = len(raw) > 4 * limit
    result = "".join(ch for ch in raw[: 4 * limit] if ch.isprintable())  # a 2 MB text is not scanned whole
    for secret in sorted({f for s in secrets if s and len(s) >= 4 for f in _forms(s)}, key=len, reverse=True):
        result = result.replace(secret, REDACTED)
    return result[:limit] + ("..." if cut or len(result) > limit else "")


def redact(text: str | None, secrets: Iterable[str | None]) -> str:
    """:func:`sanitize` for a quote of server text inside a message: capped at :data:`MAX_QUOTED`."""
    return sanitize(text, secrets, limit=MAX_QUOTED)


def location_host(headers: Mapping[str, str]) -> str:
    """The host a redirect points to (``'(none)'`` when absent, ``'(relative)'`` for a path)."""
    location = headers.get("Location") or headers.get("location") or ""
    if not location.strip():
        return "(none)"
    try:
        host = urlsplit(location.strip()).hostname
    except ValueError:
        host = None
    return redact(host, ()) if host else "(relative: the same host)"


def redirect_error(
    status: int,
    headers: Mapping[str, str],
    *,
    what: str,
    hint: str,
    error: Callable[..., CredentialsError] = CredentialsError,
) -> CredentialsError:
    """The error (``error``: its class) for a 3xx answer from an auth endpoint, which is never followed."""
    return error(
        f"{what} answered HTTP {status}, a redirect to host {location_host(headers)!r}; redirects from "
        f"CARTO's auth endpoints are never followed, so nothing was sent there. {hint}",
        status=status,
    )


#: What a name or id may be as one URL path segment: letters, digits and ``_ - . : @ + = ~`` or a
#: space, not only dots (``.``/``..`` would name another API path).
_SEGMENT = re.compile(r"(?!\.+\Z)[\w .:@+=~-]+\Z")


def path_segment(value: Any, what: str = "name", *, max_length: int = 256, secret: bool = False) -> str:
    """``value`` URL-quoted as one path segment, or ConfigurationError: a connection name or a job,
    import or workflow id (templated, or sent by a server) cannot turn a call into another API path.
    A ``secret`` value (a token) is not quoted in the error."""
    text = str(value)
    if not 0 < len(text) <= max_length or not _SEGMENT.match(text):
        shown = "" if secret else f" {sanitize(text, limit=80)!r}"
        raise ConfigurationError(
            f"Refused {what}{shown}: it must be 1 to {max_length} letters, digits, "
            "spaces or '_-.:@+=~', and not only dots."
        )
    return quote(text, safe="")
