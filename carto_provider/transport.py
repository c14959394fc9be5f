"""The one HTTP transport of this package: every CARTO call, sync or async, goes through it.

It owns what every call needs and nothing else, so the rules live in one place:

* **Timeouts** on every request: ``(connect, read)`` seconds.
* **Retries**, with one tenacity configuration (:func:`retry_arguments`) shared by
  :class:`Transport` (``tenacity.Retrying``) and :class:`AsyncTransport` (``tenacity.AsyncRetrying``).
  An *idempotent* call (reads, cancellations, token requests) is retried on any transient failure:
  connection errors, timeouts, 429 and 5xx. An *at-most-once* call (creating a job or an import,
  running a query) is retried only when CARTO certainly did not act on it: the connection could not
  be set up, or CARTO refused the request (429, 503). A server's ``Retry-After`` is honoured up to
  :attr:`RetryPolicy.max_retry_after`; otherwise waits grow exponentially from
  :attr:`RetryPolicy.initial_wait` up to :attr:`RetryPolicy.max_wait`, within an optional
  :attr:`RetryPolicy.budget` of seconds.
* **The single 401 refresh**: a call carrying a bearer token that answers 401 asks the token source
  for a new token once, naming the refused one (``rejected=``), and is sent once more.
* **CARTO's errors**: a failed call raises :class:`~carto_provider.errors.CartoAPIError` with
  CARTO's own ``error`` text, the HTTP status and what to check.
* **Redirects are never followed** (a token or a client secret must not travel to another host).

It is Airflow-free (and imports nothing of :mod:`carto_provider.auth`, which builds on it) and
opens one ``httpx.Client`` (or ``AsyncClient``) per transport: make one per hook or per trigger
run, not one per request. httpx is imported on first use, not at import time.

Form POST without a token (e.g. an OAuth token endpoint)::

    with Transport(auth_url) as transport:
        response = transport.request(
            "POST", auth_url + "/oauth/token", data={...}, authorize=False, raise_for_status=False
        )

``response`` is the final ``httpx.Response`` (a persisting 429/5xx included); a server that never
answered raises ``CartoAPIError`` with ``status=None``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import tenacity

from carto_provider import __version__
from carto_provider.errors import CartoAPIError

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

#: (connect, read) seconds. CARTO's synchronous APIs give up after one minute themselves.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 30.0)
#: Answers worth another try of an idempotent call.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: Answers meaning "not accepted, try later": safe to repeat even a call that creates something.
REFUSED_STATUS = frozenset({429, 503})
USER_AGENT = f"airflow-provider-carto/{__version__}"
UNREACHABLE_HINT = "Check the API base URL and the network."

Timeout = float | tuple[float, float]
#: Given the token value a server just refused (or None), returns a token value to send.
TokenSource = Callable[[str | None], str]


@dataclass(frozen=True)
class RetryPolicy:
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


DEFAULT_RETRY = RetryPolicy()


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
        policy: RetryPolicy,
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


def redact_url(url: str) -> str:
    """The URL without query string or fragment (CARTO examples put tokens in ``access_token=``)."""
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def retried_errors(*, at_most_once: bool) -> tuple[type[BaseException], ...]:
    """The exceptions a call is retried on: for an at-most-once call, only those raised before
    anything was sent."""
    import httpx

    if at_most_once:
        return (httpx.ConnectError, httpx.ConnectTimeout, RetryableStatus)
    return (httpx.TransportError, RetryableStatus)


def retry_arguments(policy: RetryPolicy, *, at_most_once: bool, label: str) -> dict[str, Any]:
    """The keyword arguments of ``tenacity.Retrying`` and ``tenacity.AsyncRetrying`` alike.

    The last answer of a persisting retryable status is returned (not raised), so the caller reports
    the server's own error body.
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
        "retry": tenacity.retry_if_exception_type(retried_errors(at_most_once=at_most_once)),
        "before_sleep": log_retry,
        "retry_error_callback": give_up,
    }


# ---------------------------------------------------------------------------------------------- errors


def error_fields(response: Any) -> tuple[str | None, str | None]:
    """CARTO's ``error`` and a description (``error_description``, ``description``, ``message``)
    from a JSON error body; an error object ``{code, msg}`` gives ``"code: msg"``."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):
        error = ": ".join(str(error[k]) for k in ("code", "msg", "message") if error.get(k)) or None
    description = body.get("error_description") or body.get("description") or body.get("message")
    return (
        str(error) if error is not None else None,
        str(description) if description is not None else None,
    )


def api_error(response: Any, *, api_base_url: str) -> CartoAPIError:
    """A CartoAPIError with CARTO's ``error`` text, the status and what to check (httpx or requests)."""

    error, description = error_fields(response)
    reason = getattr(response, "reason_phrase", None) or getattr(response, "reason", None)
    detail = ": ".join(x for x in (error, description) if x) or (reason or "no error body")
    url = redact_url(str(response.url or ""))
    status = response.status_code
    hints = {
        401: f" The API at {api_base_url} refused the token: check that the API base URL is your "
        "account's region (CARTO Workspace > Developers).",
        403: " The user behind these credentials lacks permission for this resource.",
        404: " Check the API base URL and the resource name.",
    }
    method = response.request.method if response.request is not None else ""
    return CartoAPIError(
        f"CARTO API {method} {url} failed (HTTP {status}: {detail}).{hints.get(status, '')}",
        status=status,
        error=error or description,
        url=url,
    )


def response_json(response: Any) -> Any:
    """The JSON body of a response (``{}`` when empty), or a clear error."""

    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        method = getattr(getattr(response, "request", None), "method", "")
        raise CartoAPIError(
            f"CARTO answered {method} {redact_url(str(response.url))} with HTTP {response.status_code} "
            "but no JSON.",
            status=response.status_code,
        ) from None


# ---------------------------------------------------------------------------------------------- transports


class _Base:
    """What the sync and async transports share: URLs, headers, timeouts, retries and errors."""

    def __init__(
        self,
        base_url: str,
        *,
        tokens: TokenSource | None = None,
        policy: RetryPolicy = DEFAULT_RETRY,
        timeout: Timeout = DEFAULT_TIMEOUT,
        unreachable_hint: str = UNREACHABLE_HINT,
    ) -> None:
        self.base_url = str(base_url).rstrip("/")
        self.tokens = tokens
        self.policy = policy
        self.timeout = timeout
        self.unreachable_hint = unreachable_hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def url(self, path: str) -> str:
        """``path`` relative to the base URL (an absolute URL is kept)."""
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    @staticmethod
    def _httpx_timeout(timeout: Timeout) -> httpx.Timeout:
        import httpx

        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        return httpx.Timeout(read, connect=connect)

    def _client_options(self) -> dict[str, Any]:
        return {
            "timeout": self._httpx_timeout(self.timeout),
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
            "follow_redirects": False,
        }

    def _retry(self, method: str, url: str, at_most_once: bool, policy: RetryPolicy | None) -> dict[str, Any]:
        return retry_arguments(
            policy or self.policy, at_most_once=at_most_once, label=f"{method} {redact_url(url)}"
        )

    @staticmethod
    def _options(token: str | None, timeout: Timeout | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if timeout is not None:
            kwargs["timeout"] = _Base._httpx_timeout(timeout)
        return {**kwargs, "headers": headers}

    @staticmethod
    def _checked(response: httpx.Response, at_most_once: bool) -> httpx.Response:
        if response.status_code in (REFUSED_STATUS if at_most_once else RETRYABLE_STATUS):
            raise RetryableStatus(response)
        return response

    @contextlib.contextmanager
    def _no_answer_as_api_error(self, method: str, url: str, at_most_once: bool) -> Iterator[None]:
        """Turn "no answer at all" into a CartoAPIError (``status`` None) saying what it means."""
        import httpx

        try:
            yield
        except httpx.TransportError as exc:
            timed_out = isinstance(exc, httpx.TimeoutException)
            kind = "timed out" if timed_out else "could not be reached"
            message = (
                f"The CARTO API at {self.base_url} {kind} ({type(exc).__name__}). {self.unreachable_hint}"
            )
            if at_most_once and not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                message += (
                    f" CARTO may have acted on this {method} {redact_url(url)} anyway: check before running"
                    " it again (it is not repeated automatically because it must not run twice)."
                )
            raise CartoAPIError(message, url=redact_url(url)) from None

    def _finish(self, response: httpx.Response, raise_for_status: bool) -> httpx.Response:
        if raise_for_status and response.status_code >= 400:
            raise api_error(response, api_base_url=self.base_url)
        return response


class Transport(_Base):
    """Sync CARTO HTTP calls over one ``httpx.Client`` (see the module doc).

    :param base_url: the CARTO API base URL paths are relative to.
    :param tokens: where bearer tokens come from (``tokens(None)``; after a 401, ``tokens(refused)``).
    :param policy: how transient failures are retried (per call overridable).
    :param timeout: (connect, read) seconds (per call overridable).
    """

    _client: httpx.Client | None = None

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client (a later call opens a new one)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx

            self._client = httpx.Client(**self._client_options())
        return self._client

    def request(
        self,
        method: str,
        path: str,
        *,
        at_most_once: bool = False,
        authorize: bool = True,
        raise_for_status: bool = True,
        policy: RetryPolicy | None = None,
        timeout: Timeout | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request (``kwargs`` go to ``httpx.Client.request``: ``json``, ``data``, ``params``,
        ``headers``); return the final response, or raise CartoAPIError (see the module doc)."""
        url = self.url(path)
        retrying = tenacity.Retrying(**self._retry(method, url, at_most_once, policy))

        def send(token: str | None) -> httpx.Response:
            options = self._options(token, timeout, dict(kwargs))
            return retrying(lambda: self._checked(self._http().request(method, url, **options), at_most_once))

        with self._no_answer_as_api_error(method, url, at_most_once):
            token = self.tokens(None) if authorize and self.tokens else None
            response = send(token)
            if response.status_code == 401 and token is not None and self.tokens is not None:
                response = send(self.tokens(token))
        return self._finish(response, raise_for_status)

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request`, then the JSON body (``{}`` when empty)."""
        return response_json(self.request(method, path, **kwargs))


class AsyncTransport(_Base):
    """Async CARTO HTTP calls over one ``httpx.AsyncClient``; the token source runs in a worker
    thread (it may read a file or Redis). Same parameters as :class:`Transport`."""

    _client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client (a later call opens a new one)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    _loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        # A client belongs to the event loop it was opened on: another loop gets its own.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import httpx

            self._client, self._loop = httpx.AsyncClient(**self._client_options()), loop
        return self._client

    async def _token(self, rejected: str | None) -> str | None:
        return None if self.tokens is None else await asyncio.to_thread(self.tokens, rejected)

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        at_most_once: bool = False,
        authorize: bool = True,
        raise_for_status: bool = True,
        policy: RetryPolicy | None = None,
        timeout: Timeout | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The async :meth:`Transport.request`."""
        url = self.url(path)
        retrying = tenacity.AsyncRetrying(**self._retry(method, url, at_most_once, policy))

        async def send(token: str | None) -> httpx.Response:
            options = self._options(token, timeout, dict(kwargs))

            async def attempt() -> httpx.Response:
                return self._checked(await self._http().request(method, url, **options), at_most_once)

            response: httpx.Response = await retrying(attempt)
            return response

        with self._no_answer_as_api_error(method, url, at_most_once):
            token = await self._token(None) if authorize else None
            response = await send(token)
            if response.status_code == 401 and token is not None:
                response = await send(await self._token(token))
        return self._finish(response, raise_for_status)

    async def arequest_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`arequest`, then the JSON body (``{}`` when empty)."""
        return response_json(await self.arequest(method, path, **kwargs))


def form_post(
    url: str,
    data: Mapping[str, str],
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> httpx.Response:
    """One form POST without a token and without following redirects (e.g. an OAuth token request),
    retried like an idempotent call; returns the final response whatever its status."""
    with Transport(url, policy=policy, timeout=timeout) as transport:
        return transport.request("POST", url, data=dict(data), authorize=False, raise_for_status=False)
