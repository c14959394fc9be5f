"""The one HTTP transport of this package: every CARTO call, sync or async, goes through it.

It owns what every call needs and nothing else, so the rules live in one place:

* **Timeouts** on every request: ``(connect, read)`` seconds, and a total deadline per attempt
  (connect plus every read: ``connect + read``, or ``(connect, read, total)``), checked finite and
  above 0 where they are given (:mod:`carto_provider.api.bounded`).
* **Bounded answers**: every body is streamed and counted after decoding, refused as soon as it
  passes the call's ``max_body`` (:data:`~carto_provider.api.bounded.DEFAULT_MAX_BODY` unless given;
  1 MiB for error answers), so a gzip bomb costs the budget, not what it inflates to.
* **Retries**, as :mod:`carto_provider.api.retry` decides them (idempotent calls on any transient
  failure, at-most-once calls only when CARTO refused them; ``Retry-After`` honoured, capped), with
  the one tenacity configuration shared by :class:`Transport` and :class:`AsyncTransport`.
* **The single 401 refresh**: a call carrying a bearer token that answers 401 asks the token source
  for a new token once, naming the refused one (``rejected=``), and is sent once more.
* **CARTO's errors**: a failed call raises :class:`~carto_provider.errors.CartoAPIError` with
  CARTO's own ``error`` text, the HTTP status and what to check.
* **Redirects are never followed** (a token or a client secret must not travel to another host),
  and a path is relative to the base URL: an absolute URL to another origin is refused.

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

from carto_provider._version import __version__
from carto_provider.api.bounded import (
    ACCEPT_ENCODING,
    DEFAULT_MAX_BODY,
    Timeout,
    aread_bounded,
    check_timeout,
    deadline,
    install_deadlines,
    read_bounded,
)
from carto_provider.api.responses import UNREACHABLE_HINT, api_error, redact_url, response_json
from carto_provider.api.retry import (
    DEFAULT_RETRY,
    REFUSED_STATUS,
    RETRYABLE_STATUS,
    CartoRetryPolicy,
    RetryableStatus,
    retry_arguments,
)
from carto_provider.errors import CartoAPIError

if TYPE_CHECKING:
    import httpx

    from carto_provider.api._client_pool import Turn

log = logging.getLogger(__name__)

#: (connect, read) seconds. CARTO's synchronous APIs give up after one minute themselves.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 30.0)
USER_AGENT = f"airflow-provider-carto/{__version__}"
#: Sent on every CARTO API call, as CARTO's own clients send theirs (@carto/api-client 0.5.34
#: ``src/api/request-with-parameters.ts``: ``client=deck-gl-carto``; @carto/react-api:
#: ``client=carto-for-react``) so CARTO's usage analytics attribute the traffic. ``v=3.4`` is not
#: sent: api-client adds it as its Maps API minor version; ps-services (the SQL jobs client) sends
#: neither ``client`` nor ``v``.
CLIENT_PARAMS: Mapping[str, str] = {"client": "airflow-provider-carto"}

#: Given the token value a server just refused (or None), returns a token value to send.
TokenSource = Callable[[str | None], str]


# ---------------------------------------------------------------------------------------------- transports


@dataclass(frozen=True)
class Call:
    """One request as its caller described it, with the transport's own options resolved."""

    method: str
    url: str
    at_most_once: bool
    authorize: bool
    raise_for_status: bool
    total: float
    max_body: int
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
        policy: CartoRetryPolicy = DEFAULT_RETRY,
        timeout: Timeout = DEFAULT_TIMEOUT,
        unreachable_hint: str = UNREACHABLE_HINT,
        params: Mapping[str, str] | None = None,
        error_hints: Mapping[int, str] | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.base_url = str(base_url).rstrip("/")
        #: Query parameters sent on every call (the API transports: :data:`CLIENT_PARAMS`).
        self.params = dict(params or {})
        self.error_hints = error_hints
        self.tokens = tokens
        self.policy = policy
        self.timeout = timeout
        self._timeouts = check_timeout(timeout)  # (connect, read, total), checked once
        self.unreachable_hint = unreachable_hint
        self.max_body = max_body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.base_url)!r})"

    #: An async token source (:class:`AsyncTransport` only).
    atokens: Callable[[str | None], Awaitable[str]] | None = None

    def _has_tokens(self) -> bool:
        return self.tokens is not None or self.atokens is not None

    def url(self, path: str) -> str:
        """``path`` relative to the base URL; an absolute URL only on the base URL's own origin
        (the bearer token goes there and nowhere else)."""
        if "://" not in path and not path.startswith("//"):
            return f"{self.base_url}/{path.lstrip('/')}"
        if _origin(path) != _origin(self.base_url):
            raise CartoAPIError(
                f"Refused to call {redact_url(path)!r}: not on the API base URL's origin "
                f"{_origin(self.base_url)!r} (the token is sent to that origin only).",
                url=redact_url(path),
            )
        return path

    @staticmethod
    def _httpx_timeout(timeouts: tuple[float, float, float]) -> httpx.Timeout:
        import httpx

        connect, read, total = timeouts
        return httpx.Timeout(min(read, total), connect=min(connect, total))

    def _client_options(self) -> dict[str, Any]:
        return {
            "timeout": self._httpx_timeout(self._timeouts),
            "headers": {
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            "params": self.params,
            "follow_redirects": False,
        }

    def _call(self, method: str, path: str, options: dict[str, Any]) -> Call:
        """The call ``request``/``arequest`` were asked for, its transport options taken out."""
        url = self.url(path)
        at_most_once = bool(options.pop("at_most_once", False))
        policy = options.pop("policy", None) or self.policy
        timeouts = self._timeouts
        if (timeout := options.pop("timeout", None)) is not None:
            timeouts = check_timeout(timeout)
            options["timeout"] = self._httpx_timeout(timeouts)
        return Call(
            method=method,
            url=url,
            at_most_once=at_most_once,
            authorize=bool(options.pop("authorize", True)) and self._has_tokens(),
            raise_for_status=bool(options.pop("raise_for_status", True)),
            total=timeouts[2],
            max_body=int(options.pop("max_body", None) or self.max_body),
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
            where = redact_url(self.base_url)
            message = f"The CARTO API at {where} {kind} ({type(exc).__name__}). {self.unreachable_hint}"
            if call.at_most_once and not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                message += (
                    f" CARTO may have acted on this {call.method} {redact_url(call.url)} anyway: check before"
                    " running it again (it is not repeated automatically because it must not run twice)."
                )
            raise CartoAPIError(message, url=redact_url(call.url)) from None

    def _finish(
        self, response: httpx.Response, raise_for_status: bool, tokens_sent: list[str]
    ) -> httpx.Response:
        if raise_for_status and response.status_code >= 300:
            raise api_error(
                response, api_base_url=redact_url(self.base_url), secrets=tokens_sent, hints=self.error_hints
            )
        return response


class Transport(_Base):
    """Sync CARTO HTTP calls over one ``httpx.Client`` (see the module doc).

    :param base_url: the CARTO API base URL paths are relative to.
    :param tokens: where bearer tokens come from (``tokens(None)``; after a 401, ``tokens(refused)``).
    :param policy: how transient failures are retried (per call overridable).
    :param timeout: (connect, read) seconds (per call overridable).
    :param error_hints: advice per HTTP status added to errors instead of the default one.
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

            client = httpx.Client(verify=verify_for(self.base_url), **self._client_options())
            install_deadlines([client._transport, *client._mounts.values()])
            self._client = client
        return self._client

    def _attempt(self, call: Call, token: str | None) -> httpx.Response:
        """One attempt: sent, then its answer read within the call's budget and total deadline."""
        with deadline(call.total), self._http().stream(**call.request(token)) as response:
            read_bounded(response, call.max_body)
        return self._checked(response, call.at_most_once)

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """Send a request; return the final response, or raise CartoAPIError (see the module doc).

        ``options``: ``at_most_once`` (False), ``authorize`` (True: a bearer token from ``tokens``),
        ``raise_for_status`` (True: an answer of 300 or more raises), ``policy``, ``timeout`` and
        ``max_body`` (this transport's by default); the rest go to ``httpx.Client.request``
        (``json``, ``data``, ``params``, ``headers``).
        """
        call = self._call(method, path, options)
        retrying = tenacity.Retrying(**call.retry)

        def send(token: str | None) -> httpx.Response:
            return retrying(self._attempt, call, token)

        sent: list[str] = []
        with self._no_answer_as_api_error(call):
            token = self.tokens(None) if call.authorize and self.tokens else None
            sent += [token] if token else []
            response = send(token)
            if response.status_code == 401 and token is not None and self.tokens is not None:
                token = self.tokens(token)
                sent.append(token)
                response = send(token)
        return self._finish(response, call.raise_for_status, sent)

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request`, then the JSON body (``{}`` when empty)."""
        return response_json(self.request(method, path, **kwargs))


class AsyncTransport(_Base):
    """Async CARTO HTTP calls over ``httpx.AsyncClient``. Same parameters as :class:`Transport`, and:

    :param atokens: an async token source (the contract of ``tokens``, awaited on the loop); without
        it ``tokens`` runs in a worker thread (it may read a file or Redis).
    :param shared_client: send through the running loop's one client for this origin and these
        client settings (:mod:`carto_provider.api._client_pool`: one connection pool and one TLS
        context for every such transport of the loop, e.g. every trigger of a triggerer), never
        closed here; otherwise the transport opens its own client per loop and :meth:`aclose` closes it.
    """

    _client: httpx.AsyncClient | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def __init__(
        self,
        base_url: str,
        *,
        atokens: Callable[[str | None], Awaitable[str]] | None = None,
        shared_client: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(base_url, **options)
        self.atokens = atokens
        self.shared_client = shared_client

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client this transport opened (a later call opens a new one); a shared
        client stays open for the loop's other transports."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _http(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore | None]:
        """The client to send through, and the slots a request takes a turn of (a shared client's)."""
        from carto_provider.api._client_pool import averify_for, shared_client

        if self.shared_client:
            shared = await shared_client(_origin(self.base_url), self._client_options())
            return shared.client, shared.slots
        # A client belongs to the event loop it was opened on: another loop gets its own.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import httpx

            verify = await averify_for(self.base_url)
            self._client = httpx.AsyncClient(verify=verify, **self._client_options())
            self._loop = loop
        return self._client, None

    async def _token(self, rejected: str | None) -> str | None:
        if self.atokens is not None:
            return await self.atokens(rejected)
        return None if self.tokens is None else await asyncio.to_thread(self.tokens, rejected)

    async def arequest(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The async :meth:`Transport.request` (same options). On a shared client the request first
        waits for its turn (:class:`~carto_provider.api._client_pool.Turn`); the wait is not charged
        to the attempt's deadline, which bounds CARTO's answer."""
        from carto_provider.api._client_pool import Turn

        client, slots = await self._http()
        if slots is None:
            return await self._arequest(client, None, method, path, options)
        async with Turn(slots) as turn:
            # Tokens are refreshed in a worker thread over a sync client, never through this one, so
            # a turn held while the token is awaited cannot starve the refresh.
            return await self._arequest(client, turn, method, path, options)

    async def _arequest(
        self, client: httpx.AsyncClient, turn: Turn | None, method: str, path: str, options: dict[str, Any]
    ) -> httpx.Response:
        call = self._call(method, path, options)
        retrying = tenacity.AsyncRetrying(**call.retry, sleep=turn.sleep if turn else asyncio.sleep)

        async def attempt(token: str | None) -> httpx.Response:
            import anyio
            import httpx

            try:
                with anyio.fail_after(call.total):
                    async with client.stream(**call.request(token)) as response:
                        await aread_bounded(response, call.max_body)
            except TimeoutError:
                raise httpx.ReadTimeout(f"no complete answer within {call.total:g} s") from None
            return self._checked(response, call.at_most_once)

        sent: list[str] = []
        with self._no_answer_as_api_error(call):
            token = await self._token(None) if call.authorize else None
            sent += [token] if token else []
            response: httpx.Response = await retrying(attempt, token)
            if response.status_code == 401 and token is not None:
                token = await self._token(token)
                sent += [token] if token else []
                response = await retrying(attempt, token)
        return self._finish(response, call.raise_for_status, sent)

    async def arequest_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`arequest`, then the JSON body (``{}`` when empty)."""
        return response_json(await self.arequest(method, path, **kwargs))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.netloc.rpartition('@')[2]).lower()}"


def form_post(
    url: str,
    data: Mapping[str, str],
    *,
    policy: CartoRetryPolicy = DEFAULT_RETRY,
    timeout: Timeout = DEFAULT_TIMEOUT,
    max_body: int = DEFAULT_MAX_BODY,
) -> httpx.Response:
    """One form POST without a token and without following redirects (e.g. an OAuth token request),
    retried like an idempotent call; returns the final response whatever its status."""
    with Transport(url, policy=policy, timeout=timeout, max_body=max_body) as transport:
        return transport.request("POST", url, data=dict(data), authorize=False, raise_for_status=False)
