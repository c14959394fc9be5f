"""The auth flow's HTTP calls, on the package's one transport (:mod:`carto_provider.api.transport`).

Token requests, the accounts service and the tenant configuration are unauthenticated calls
(:func:`auth_flow_call`) that :class:`~carto_provider.api.transport.Transport` retries as idempotent ones
(connection errors, timeouts, 429 and 5xx, capped backoff honouring ``Retry-After``), never following
a redirect. Each of their failures is told once, here: no answer, an answer above
:data:`~carto_provider.api.untrusted.MAX_BODY_BYTES`, a 3xx (naming its ``Location`` host), a refusal
(CARTO's error, server text redacted); the caller names the endpoint and what to check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from carto_provider.api.responses import error_detail, error_fields, unreachable_message
from carto_provider.api.retry import DEFAULT_RETRY, CartoRetryPolicy
from carto_provider.api.transport import DEFAULT_TIMEOUT, Timeout, Transport
from carto_provider.api.untrusted import MAX_BODY_BYTES, redirect_error
from carto_provider.errors import CartoAPIError, CredentialsError, ResponseTooLargeError

if TYPE_CHECKING:
    import httpx


_TRANSPORTS: dict[tuple[str, CartoRetryPolicy, Timeout], Transport] = {}
_TRANSPORTS_LOCK = threading.Lock()


def _transport_for(url: str, policy: CartoRetryPolicy, timeout: Timeout) -> Transport:
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
    policy: CartoRetryPolicy = DEFAULT_RETRY,
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
        raise error(unreachable_message(where, timed_out=timed_out, hint=hint)) from None
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
