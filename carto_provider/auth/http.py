"""The auth flow's HTTP calls, on the package's one transport (:mod:`carto_provider.transport`).

Token requests, the accounts service and the tenant configuration are unauthenticated calls
(:func:`auth_flow_call`) that :class:`~carto_provider.transport.Transport` retries as idempotent ones
(connection errors, timeouts, 429 and 5xx, capped backoff honouring ``Retry-After``), never following
a redirect. Each of their failures is told once, here: no answer, an answer above
:data:`~.untrusted.MAX_BODY_BYTES`, a 3xx (naming its ``Location`` host), a refusal (CARTO's error,
server text redacted); the caller names the endpoint and what to check.
The retry rules are re-exported here for the code and tests that import them from this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from carto_provider.auth.untrusted import MAX_BODY_BYTES, UnusableBody, parse_json, redirect_error
from carto_provider.errors import CartoAPIError, CredentialsError
from carto_provider.transport import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    RETRYABLE_STATUS,
    USER_AGENT,
    ResponseTooLargeError,
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
    "Refusal",
    "RetryAfterWait",
    "RetryPolicy",
    "RetryableStatus",
    "auth_flow_call",
    "error_detail",
    "error_fields",
    "parse_retry_after",
    "redact_url",
    "response_body",
    "retryable_response",
    "unreachable_message",
]


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


#: Builds the error for an answer that is neither 200 nor a redirect, from the answer and the secrets.
Refusal = Callable[["httpx.Response", Sequence[str]], CredentialsError]


def auth_flow_call(
    method: str,
    url: str,
    *,
    where: str,
    hint: str,
    error: Callable[..., CredentialsError] = CredentialsError,
    refused: Refusal | None = None,
    secrets: Sequence[str] = (),
    policy: RetryPolicy = DEFAULT_RETRY,
    timeout: Timeout = DEFAULT_TIMEOUT,
    **options: Any,
) -> httpx.Response:
    """The 200 answer of one call of the auth flow (token endpoint, accounts service, tenant
    configuration; ``options``: ``headers``, ``data``), or an ``error`` whose message starts with
    ``where`` (``"The CARTO auth server at <URL>"``) and ends with ``hint`` (what to check).

    No answer after the retries, an answer too large and a redirect (never followed: its host is
    named) are told here; any other status by ``refused(response, secrets)`` when given, else as
    ``<where> answered HTTP <status> (<CARTO's error>)``. Server text has ``secrets`` redacted.
    """
    transport = _transport_for(url, policy, timeout)
    try:
        response = transport.request(
            method, url, authorize=False, raise_for_status=False, max_body=MAX_BODY_BYTES, **options
        )
    except ResponseTooLargeError:  # refused while reading, as soon as the decoded size passed it
        raise error(
            f"{where} sent an unusable answer (larger than {MAX_BODY_BYTES // 1024} KiB). {hint}"
        ) from None
    except CartoAPIError as exc:
        if exc.status is not None:
            raise
        timed_out = "timed out" in str(exc)  # the transport's "no answer at all", after its retries
        raise error(unreachable_message(where, exc, timed_out=timed_out, hint=hint)) from None
    status = response.status_code
    if 300 <= status < 400:
        raise redirect_error(status, response.headers, what=where, hint=hint, error=error)
    if status != 200 and refused is not None:
        raise refused(response, secrets)
    if status != 200:
        detail = error_detail(response, secrets)
        code = error_fields(response, secrets)[0]
        raise error(f"{where} answered HTTP {status} ({detail}). {hint}", status=status, error=code)
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
    return transport_error_fields(response, secrets)


def error_detail(response: Any, secrets: Iterable[str | None] = ()) -> str:
    """``"error: description"`` of a JSON error body, else the HTTP reason."""
    error, description = error_fields(response, secrets)
    reason = getattr(response, "reason_phrase", None) or getattr(response, "reason", None)
    return ": ".join(x for x in (error, description) if x) or (reason or "no error body")


def unreachable_message(what: str, exc: BaseException, *, timed_out: bool, hint: str) -> str:
    """``"<what> timed out|could not be reached after several attempts. <hint>"``."""
    kind = "timed out" if timed_out else "could not be reached"
    return f"{what} {kind} after several attempts. {hint}"
