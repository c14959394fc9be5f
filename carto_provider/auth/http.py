"""HTTP discipline for every call this package makes: timeouts, bounded retries, clear errors.

Transient failures (connection errors, timeouts, 429 and 5xx) are retried with capped exponential
backoff and full jitter; a ``Retry-After`` header is honoured up to a cap. 400, 401, 403 and every
other status are returned at once for the caller to turn into a clear error. Redirects are never
followed: a 3xx is returned to the caller like any other answer (a secret or a token is sent once,
to the host the settings name).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import tenacity

from carto_provider.auth.untrusted import UnusableBody, parse_json, redact
from carto_provider.transport import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    RETRYABLE_STATUS,
    USER_AGENT,
    RetryableStatus,
    RetryAfterWait,
    RetryPolicy,
    parse_retry_after,
    redact_url,
    retryable_response,
)

# The retry rules and helpers are the package's one transport's (carto_provider.transport); they are
# re-exported here for the code and tests that import them from this module.
from carto_provider.transport import error_fields as transport_error_fields

if TYPE_CHECKING:
    import requests

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "RETRYABLE_STATUS",
    "USER_AGENT",
    "RetryAfterWait",
    "RetryPolicy",
    "RetryableStatus",
    "error_detail",
    "error_fields",
    "new_session",
    "parse_retry_after",
    "read_bounded",
    "redact_url",
    "response_body",
    "retryable_response",
    "send",
    "unreachable_message",
]

log = logging.getLogger(__name__)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    headers: Mapping[str, str] | None = None,
    max_body: int | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send one request with retries on transient failures; return the final response.

    Raises ``requests.ConnectionError``/``requests.Timeout`` when every attempt failed to get an
    answer. A retryable status that persists is returned (not raised) so the caller can report the
    server's own error body. ``max_body`` bounds the body read (bytes): a longer one raises
    :class:`~carto_provider.auth.untrusted.UnusableBody` without reading the rest.
    """

    import requests  # on first use: not at DAG-parse time

    all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    shown = f"{method} {redact_url(url)}"

    def log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = (
            f"HTTP {exc.response.status_code}" if isinstance(exc, RetryableStatus) else type(exc).__name__
        )
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "CARTO %s failed (%s); retry %d of %d in %.1f s",
            shown,
            reason,
            state.attempt_number,
            policy.attempts - 1,
            wait,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=RetryAfterWait(policy),
        retry=tenacity.retry_if_exception_type((requests.ConnectionError, requests.Timeout, RetryableStatus)),
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                response = session.request(
                    method,
                    url,
                    headers=all_headers,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=max_body is not None,
                    **kwargs,
                )
                if max_body is not None:
                    read_bounded(response, max_body)
                if response.status_code in RETRYABLE_STATUS:
                    raise RetryableStatus(response)
                return response
    except RetryableStatus as exc:
        return exc.response
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover


def read_bounded(response: requests.Response, limit: int) -> bytes:
    """Read a streamed body of at most ``limit`` bytes into ``response`` (so ``.json()`` works), or
    raise :class:`UnusableBody` and close the connection."""
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise UnusableBody(f"the answer is larger than {limit // 1024} KiB")
            chunks.append(chunk)
    except UnusableBody:
        response.close()
        raise
    response._content = b"".join(chunks)  # what requests' own .content fills
    return response._content


def response_body(response: Any) -> Any:
    """The JSON body of a requests or httpx response, bounded (see :func:`untrusted.parse_json`),
    or None when it is not usable JSON."""
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
    """``"error: description"`` of a JSON error body, else the HTTP reason (requests or httpx)."""
    error, description = error_fields(response, secrets)
    reason = getattr(response, "reason", None) or getattr(response, "reason_phrase", None)
    return ": ".join(x for x in (error, description) if x) or (reason or "no error body")


def unreachable_message(what: str, exc: BaseException, *, timed_out: bool, hint: str) -> str:
    """``"<what> timed out|could not be reached after several attempts (<Exception>). <hint>"``."""
    kind = "timed out" if timed_out else "could not be reached"
    return f"{what} {kind} after several attempts ({type(exc).__name__}). {hint}"


def new_session() -> requests.Session:
    """A ``requests`` session with this package's User-Agent (retries are done by :func:`send`)."""

    import requests  # on first use: not at DAG-parse time

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session
