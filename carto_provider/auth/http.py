"""The auth flow's HTTP calls, on the package's one transport (:mod:`carto_provider.transport`).

Token requests, the accounts service and the tenant configuration are unauthenticated calls that
:class:`~carto_provider.transport.Transport` retries as idempotent ones (connection errors, timeouts,
429 and 5xx, capped backoff honouring ``Retry-After``), never following a redirect: a 3xx comes back
as an answer, which the callers turn into an error naming its ``Location`` host. Answers above
:data:`~.untrusted.MAX_BODY_BYTES` are refused; server text is redacted before it enters a message.
The retry rules are re-exported here for the code and tests that import them from this module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from carto_provider.auth.untrusted import MAX_BODY_BYTES, UnusableBody, parse_json, redact
from carto_provider.errors import CartoAPIError
from carto_provider.transport import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    RETRYABLE_STATUS,
    USER_AGENT,
    RetryableStatus,
    RetryAfterWait,
    RetryPolicy,
    Timeout,
    Transport,
    parse_retry_after,
    redact_url,
    retryable_response,
)
from carto_provider.transport import error_fields as transport_error_fields

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "RETRYABLE_STATUS",
    "USER_AGENT",
    "NoAnswer",
    "RetryAfterWait",
    "RetryPolicy",
    "RetryableStatus",
    "error_detail",
    "error_fields",
    "parse_retry_after",
    "redact_url",
    "response_body",
    "retryable_response",
    "unauthenticated_call",
    "unreachable_message",
]


class NoAnswer(Exception):
    """The server did not answer at all, after the transport's retries."""

    def __init__(self, *, timed_out: bool) -> None:
        super().__init__("timed out" if timed_out else "could not be reached")
        self.timed_out = timed_out


_TRANSPORTS: dict[tuple[str, RetryPolicy, Timeout], Transport] = {}
_TRANSPORTS_LOCK = threading.Lock()


def _transport_for(url: str, policy: RetryPolicy, timeout: Timeout) -> Transport:
    """One transport (one connection pool, one TLS context) per origin and settings, per process: a
    refresh of a short-lived token must not pay for a new client each time."""
    parts = urlsplit(url)
    key = (f"{parts.scheme}://{parts.netloc}", policy, timeout)
    with _TRANSPORTS_LOCK:
        transport = _TRANSPORTS.get(key)
        if transport is None:
            transport = _TRANSPORTS[key] = Transport(key[0], policy=policy, timeout=timeout)
        return transport


def unauthenticated_call(
    method: str,
    url: str,
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    timeout: Timeout = DEFAULT_TIMEOUT,
    headers: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One call of the auth flow without a bearer token; the final answer whatever its status.

    Raises :class:`NoAnswer` when no attempt got an answer and :class:`UnusableBody` for an answer
    above :data:`MAX_BODY_BYTES`.
    """
    options: dict[str, Any] = {"headers": dict(headers or {})}
    if data is not None:
        options["data"] = dict(data)
    try:
        response = _transport_for(url, policy, timeout).request(
            method, url, authorize=False, raise_for_status=False, **options
        )
    except CartoAPIError as exc:
        if exc.status is None:  # the transport's "no answer at all"
            raise NoAnswer(timed_out="timed out" in str(exc)) from None
        raise
    if len(response.content) > MAX_BODY_BYTES:
        raise UnusableBody(f"the answer is larger than {MAX_BODY_BYTES // 1024} KiB")
    return response


def response_body(response: Any) -> Any:
    """The JSON body of a response, bounded (see :func:`untrusted.parse_json`), or None when it is
    not usable JSON."""
    content = getattr(response, "content", None)
    try:
        return parse_json(content) if isinstance(content, bytes) else response.json()
    except (UnusableBody, RuntimeError, ValueError):
        return None


def error_fields(response: Any, secrets: Iterable[str | None] = ()) -> tuple[str | None, str | None]:
    """CARTO's ``error`` and description of a JSON error body (see the transport's ``error_fields``),
    with every secret in ``secrets`` redacted."""
    if not isinstance(response_body(response), dict):
        return None, None
    secrets = list(secrets)
    error, description = transport_error_fields(response)
    return (
        redact(error, secrets) if error is not None else None,
        redact(description, secrets) if description is not None else None,
    )


def error_detail(response: Any, secrets: Iterable[str | None] = ()) -> str:
    """``"error: description"`` of a JSON error body, else the HTTP reason."""
    error, description = error_fields(response, secrets)
    reason = getattr(response, "reason_phrase", None) or getattr(response, "reason", None)
    return ": ".join(x for x in (error, description) if x) or (reason or "no error body")


def unreachable_message(what: str, exc: BaseException, *, timed_out: bool, hint: str) -> str:
    """``"<what> timed out|could not be reached after several attempts. <hint>"``."""
    kind = "timed out" if timed_out else "could not be reached"
    return f"{what} {kind} after several attempts. {hint}"
