"""The one HTTP transport of this package: every CARTO call, sync or async, goes through it.

It owns what every call needs and nothing else, so the rules live in one place:

* **Timeouts** on every request: ``(connect, read)`` seconds.
* **Retries**, as :mod:`carto_provider.retry` decides them (idempotent calls on any transient
  failure, at-most-once calls only when CARTO refused them; ``Retry-After`` honoured, capped), with
  the one tenacity configuration shared by :class:`Transport` and :class:`AsyncTransport`.
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
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import tenacity

from carto_provider import __version__
from carto_provider.errors import CartoAPIError
from carto_provider.retry import (
    DEFAULT_RETRY,
    REFUSED_STATUS,
    RETRYABLE_STATUS,
    RetryableStatus,
    RetryAfterWait,
    RetryPolicy,
    parse_retry_after,
    retried_errors,
    retry_arguments,
    retryable_response,
)

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "REFUSED_STATUS",
    "RETRYABLE_STATUS",
    "USER_AGENT",
    "AsyncTransport",
    "RetryAfterWait",
    "RetryPolicy",
    "RetryableStatus",
    "Transport",
    "api_error",
    "error_fields",
    "form_post",
    "parse_retry_after",
    "redact_url",
    "response_json",
    "retried_errors",
    "retry_arguments",
    "retryable_response",
]

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

#: (connect, read) seconds. CARTO's synchronous APIs give up after one minute themselves.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 30.0)
USER_AGENT = f"airflow-provider-carto/{__version__}"
UNREACHABLE_HINT = "Check the API base URL and the network."

Timeout = float | tuple[float, float]
#: Given the token value a server just refused (or None), returns a token value to send.
TokenSource = Callable[[str | None], str]


def redact_url(url: str) -> str:
    """The URL without query string or fragment (CARTO examples put tokens in ``access_token=``)."""
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


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


@dataclass(frozen=True)
class Call:
    """One request as its caller described it, with the transport's own options resolved."""

    method: str
    url: str
    at_most_once: bool
    authorize: bool
    raise_for_status: bool
    retry: dict[str, Any]
    options: dict[str, Any]

    def request(self, token: str | None) -> dict[str, Any]:
        """The arguments of ``httpx.Client.request`` for one attempt, with ``token`` as bearer."""
        headers = dict(self.options.get("headers") or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return {**self.options, "method": self.method, "url": self.url, "headers": headers}


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

    #: An async token source (:class:`AsyncTransport` only).
    atokens: Callable[[str | None], Awaitable[str]] | None = None

    def _has_tokens(self) -> bool:
        return self.tokens is not None or self.atokens is not None

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

    def _call(self, method: str, path: str, options: dict[str, Any]) -> Call:
        """The call ``request``/``arequest`` were asked for, its transport options taken out."""
        url = self.url(path)
        at_most_once = bool(options.pop("at_most_once", False))
        policy = options.pop("policy", None) or self.policy
        timeout = options.pop("timeout", None)
        if timeout is not None:
            options["timeout"] = self._httpx_timeout(timeout)
        return Call(
            method=method,
            url=url,
            at_most_once=at_most_once,
            authorize=bool(options.pop("authorize", True)) and self._has_tokens(),
            raise_for_status=bool(options.pop("raise_for_status", True)),
            retry=retry_arguments(policy, at_most_once=at_most_once, label=f"{method} {redact_url(url)}"),
            options=options,
        )

    @staticmethod
    def _checked(response: httpx.Response, at_most_once: bool) -> httpx.Response:
        if response.status_code in (REFUSED_STATUS if at_most_once else RETRYABLE_STATUS):
            raise RetryableStatus(response)
        return response

    @contextlib.contextmanager
    def _no_answer_as_api_error(self, call: Call) -> Iterator[None]:
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
            if call.at_most_once and not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                message += (
                    f" CARTO may have acted on this {call.method} {redact_url(call.url)} anyway: check before"
                    " running it again (it is not repeated automatically because it must not run twice)."
                )
            raise CartoAPIError(message, url=redact_url(call.url)) from None

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

            from carto_provider.api._client_pool import verify_for

            self._client = httpx.Client(verify=verify_for(self.base_url), **self._client_options())
        return self._client

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """Send a request; return the final response, or raise CartoAPIError (see the module doc).

        ``options``: ``at_most_once`` (False), ``authorize`` (True: a bearer token from ``tokens``),
        ``raise_for_status`` (True), ``policy`` and ``timeout`` (this transport's by default); the
        rest go to ``httpx.Client.request`` (``json``, ``data``, ``params``, ``headers``).
        """
        call = self._call(method, path, options)
        retrying = tenacity.Retrying(**call.retry)

        def send(token: str | None) -> httpx.Response:
            return retrying(
                lambda: self._checked(self._http().request(**call.request(token)), call.at_most_once)
            )

        with self._no_answer_as_api_error(call):
            token = self.tokens(None) if call.authorize and self.tokens else None
            response = send(token)
            if response.status_code == 401 and token is not None and self.tokens is not None:
                response = send(self.tokens(token))
        return self._finish(response, call.raise_for_status)

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request`, then the JSON body (``{}`` when empty)."""
        return response_json(self.request(method, path, **kwargs))


class AsyncTransport(_Base):
    """Async CARTO HTTP calls over one ``httpx.AsyncClient``. Same parameters as :class:`Transport`,
    and:

    :param client: a client shared with other transports (e.g.
        :func:`carto_provider.api._client_pool.shared_client`), used as is and never closed here;
        without it the transport opens its own per event loop and :meth:`aclose` closes it.
    :param atokens: an async token source (same contract as ``tokens``), e.g.
        :class:`~carto_provider.api._client_pool.LoopTokens`; without it ``tokens`` runs in a worker
        thread (it may read a file or Redis).
    """

    _client: httpx.AsyncClient | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        atokens: Callable[[str | None], Awaitable[str]] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, **options)
        self._shared = client
        self.atokens = atokens

    @classmethod
    async def shared(cls, base_url: str, **options: Any) -> AsyncTransport:
        """A transport over the running loop's shared client for ``base_url``'s origin (see
        :func:`carto_provider.api._client_pool.shared_client`). Same options as the constructor."""
        from carto_provider.api._client_pool import shared_client

        transport = cls(base_url, **options)
        parts = urlsplit(transport.base_url)
        transport._shared = await shared_client(
            f"{parts.scheme}://{parts.netloc}", **transport._client_options()
        )
        return transport

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client this transport opened (a later call opens a new one)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._shared is not None:
            return self._shared
        # A client belongs to the event loop it was opened on: another loop gets its own.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import httpx

            from carto_provider.api._client_pool import verify_for

            # verify_for blocks once per process (the CA bundle), where no shared client does it.
            client = httpx.AsyncClient(verify=verify_for(self.base_url), **self._client_options())
            self._client, self._loop = client, loop
        return self._client

    async def _token(self, rejected: str | None) -> str | None:
        if self.atokens is not None:
            return await self.atokens(rejected)
        return None if self.tokens is None else await asyncio.to_thread(self.tokens, rejected)

    async def arequest(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The async :meth:`Transport.request` (same options)."""
        call = self._call(method, path, options)
        retrying = tenacity.AsyncRetrying(**call.retry)

        async def attempt(token: str | None) -> httpx.Response:
            return self._checked(await self._http().request(**call.request(token)), call.at_most_once)

        with self._no_answer_as_api_error(call):
            token = await self._token(None) if call.authorize else None
            response: httpx.Response = await retrying(attempt, token)
            if response.status_code == 401 and token is not None:
                response = await retrying(attempt, await self._token(token))
        return self._finish(response, call.raise_for_status)

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
