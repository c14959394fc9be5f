"""How this package retries a CARTO call: one tenacity configuration for sync and async code.

An *idempotent* call (reads, cancellations, token requests) is retried on any transient failure:
connection errors, timeouts, 429 and 5xx. An *at-most-once* call (creating a job or an import,
running a query) is retried only when CARTO certainly did not act on it: the connection could not
be set up, or CARTO refused the request (429, 503). A server's ``Retry-After`` is honoured up to
:attr:`CartoRetryPolicy.max_retry_after`; otherwise waits grow exponentially from
:attr:`CartoRetryPolicy.initial_wait` up to :attr:`CartoRetryPolicy.max_wait`, within an optional
:attr:`CartoRetryPolicy.budget`. :func:`retry_arguments` gives the keyword arguments of both
``tenacity.Retrying`` and ``tenacity.AsyncRetrying``, as the Databricks provider shares its
``retry_args``. Used by :mod:`carto_provider.api.transport`; no Airflow, no I/O.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenacity

log = logging.getLogger(__name__)

#: Answers worth another try of an idempotent call.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: Answers meaning "not accepted, try later": safe to repeat even a call that creates something.
REFUSED_STATUS = frozenset({429, 503})


@dataclass(frozen=True)
class CartoRetryPolicy:
    """How transient failures are retried.

    ``attempts`` counts every try (5 means 1 call plus up to 4 retries); waits grow from
    ``initial_wait`` doubling up to ``max_wait`` (plus up to ``initial_wait`` of jitter); a server's
    ``Retry-After`` is honoured up to ``max_retry_after`` seconds; ``budget`` (seconds, optional)
    bounds the whole effort whatever ``attempts`` says.
    """

    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 10.0
    max_retry_after: float = 60.0
    budget: float | None = None


DEFAULT_RETRY = CartoRetryPolicy()
#: Token requests under the default policy: a task cannot do anything without a token, so it waits out
#: a short outage of CARTO's auth server (e.g. 20 s of 503 during a deploy) instead of failing. Waits
#: grow 0.5, 1, 2, 4, 8, then 10 s apart, within 90 s in all.
TOKEN_RETRY = CartoRetryPolicy(
    attempts=12, initial_wait=0.5, max_wait=10.0, max_retry_after=60.0, budget=90.0
)


class RetryableStatus(Exception):
    """An answer whose status is worth another try (raised inside a retry loop, never to callers)."""

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
    """The server's ``Retry-After`` when it sent one (capped), else capped exponential backoff."""

    def __init__(
        self,
        policy: CartoRetryPolicy,
        response_of: Callable[[tenacity.RetryCallState], Any] = retryable_response,
    ) -> None:
        self.policy = policy
        self.response_of = response_of
        self.backoff = tenacity.wait_exponential_jitter(
            initial=policy.initial_wait, max=policy.max_wait, jitter=policy.initial_wait
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        response = self.response_of(retry_state)
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        if retry_after is not None:
            return min(retry_after, self.policy.max_retry_after)
        return float(self.backoff(retry_state))


def retried_errors(*, at_most_once: bool) -> tuple[type[BaseException], ...]:
    """The exceptions a call is retried on: for an at-most-once call, only those raised before
    anything was sent."""
    import httpx

    if at_most_once:
        return (httpx.ConnectError, httpx.ConnectTimeout, RetryableStatus)
    return (httpx.TransportError, RetryableStatus)


def retry_arguments(
    policy: CartoRetryPolicy,
    *,
    at_most_once: bool,
    label: str,
    errors: tuple[type[BaseException], ...] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of ``tenacity.Retrying`` and ``tenacity.AsyncRetrying`` alike.

    The last answer of a persisting retryable status is returned (not raised), so the caller reports
    the server's own error body. ``errors`` replaces httpx's transport errors (:func:`retried_errors`)
    for a caller on another HTTP library (``requests`` where ``google-auth`` needs it): raise
    :class:`RetryableStatus` for a status worth another try, as :mod:`carto_provider.api.transport` does.
    """
    stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(max(1, policy.attempts))
    if policy.budget is not None:
        stop = stop | tenacity.stop_after_delay(policy.budget)

    def log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = (
            f"HTTP {exc.response.status_code}" if isinstance(exc, RetryableStatus) else type(exc).__name__
        )
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("CARTO %s failed (%s); try %d again in %.1f s", label, reason, state.attempt_number, wait)

    def give_up(state: tenacity.RetryCallState) -> Any:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableStatus):
            return exc.response
        raise exc if exc is not None else AssertionError("no outcome")

    return {
        "stop": stop,
        "wait": RetryAfterWait(policy),
        "retry": tenacity.retry_if_exception_type(
            (*errors, RetryableStatus) if errors is not None else retried_errors(at_most_once=at_most_once)
        ),
        "before_sleep": log_retry,
        "retry_error_callback": give_up,
    }
