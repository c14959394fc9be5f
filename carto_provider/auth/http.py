"""HTTP discipline for every call this package makes: timeouts, bounded retries, clear errors.

Transient failures (connection errors, timeouts, 429 and 5xx) are retried with capped exponential
backoff and full jitter; a ``Retry-After`` header is honoured up to a cap. 400, 401, 403 and every
other status are returned at once for the caller to turn into a clear error.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import tenacity

from carto_provider import __version__

log = logging.getLogger(__name__)

#: (connect, read) seconds. CARTO's synchronous APIs give up after one minute themselves.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 30.0)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
USER_AGENT = f"airflow-provider-carto/{__version__}"


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    ``attempts`` counts every try (so 5 means 1 call plus up to 4 retries); waits grow from
    ``initial_wait`` doubling up to ``max_wait`` with full jitter; a server's ``Retry-After`` is
    honoured up to ``max_retry_after`` seconds.
    """

    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 10.0
    max_retry_after: float = 60.0


DEFAULT_RETRY = RetryPolicy()


class RetryableStatus(Exception):
    """An answer whose status is worth another try (raised inside a retry loop, never to callers).

    ``response`` is a ``requests`` or an ``httpx`` response.
    """

    def __init__(self, response: Any) -> None:
        super().__init__(response.status_code)
        self.response = response


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retryable_response(retry_state: tenacity.RetryCallState) -> Any:
    """The response behind a :class:`RetryableStatus` outcome, else None."""
    exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
    return exc.response if isinstance(exc, RetryableStatus) else None


class RetryAfterWait(tenacity.wait.wait_base):
    """The server's ``Retry-After`` when it sent one (capped), else full-jitter exponential backoff.

    ``response_of`` finds the last answer (a ``requests`` or ``httpx`` response) in a retry state.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        response_of: Callable[[tenacity.RetryCallState], Any] = retryable_response,
    ) -> None:
        self.policy = policy
        self.response_of = response_of
        self.backoff = tenacity.wait_random_exponential(multiplier=policy.initial_wait, max=policy.max_wait)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        response = self.response_of(retry_state)
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        if retry_after is not None:
            return min(retry_after, self.policy.max_retry_after)
        return float(self.backoff(retry_state))


def redact_url(url: str) -> str:
    """The URL without query string or fragment (CARTO examples put tokens in ``access_token=``)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send one request with retries on transient failures; return the final response.

    Raises ``requests.ConnectionError``/``requests.Timeout`` when every attempt failed to get an
    answer. A retryable status that persists is returned (not raised) so the caller can report the
    server's own error body.
    """
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
                response = session.request(method, url, headers=all_headers, timeout=timeout, **kwargs)
                if response.status_code in RETRYABLE_STATUS:
                    raise RetryableStatus(response)
                return response
    except RetryableStatus as exc:
        return exc.response
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover


def error_fields(response: requests.Response) -> tuple[str | None, str | None]:
    """The ``error`` and ``error_description`` (or ``description``/``message``) of a JSON error body."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    description = body.get("error_description") or body.get("description") or body.get("message")
    return (
        str(error) if error is not None else None,
        str(description) if description is not None else None,
    )


def error_detail(response: Any) -> str:
    """``"error: description"`` of a JSON error body, else the HTTP reason (requests or httpx)."""
    error, description = error_fields(response)
    reason = getattr(response, "reason", None) or getattr(response, "reason_phrase", None)
    return ": ".join(x for x in (error, description) if x) or (reason or "no error body")


def unreachable_message(what: str, exc: BaseException, *, timed_out: bool, hint: str) -> str:
    """``"<what> timed out|could not be reached after several attempts (<Exception>). <hint>"``."""
    kind = "timed out" if timed_out else "could not be reached"
    return f"{what} {kind} after several attempts ({type(exc).__name__}). {hint}"


def new_session() -> requests.Session:
    """A ``requests`` session with this package's User-Agent (retries are done by :func:`send`)."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session
