"""Authenticated calls to the CARTO API with the token handled for the caller."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from carto_provider.auth.http import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    error_detail,
    error_fields,
    redact_url,
    send,
    unreachable_message,
)
from carto_provider.auth.untrusted import location_host
from carto_provider.errors import CartoAPIError

if TYPE_CHECKING:
    import requests

API_UNREACHABLE_HINT = "Check the API base URL and the network."

#: Called with a token value the server refused; returns a replacement.
TokenProvider = Callable[[str | None], str]


def api_error(
    response: requests.Response, *, api_base_url: str, secrets: Iterable[str | None] = ()
) -> CartoAPIError:
    """A CartoAPIError with CARTO's ``error`` text (``secrets`` redacted), the status and what to check."""
    error, description = error_fields(response, secrets)
    detail = error_detail(response, secrets)
    url = redact_url(str(response.url or ""))
    hint = ""
    if 300 <= response.status_code < 400:
        target = location_host(getattr(response, "headers", {}))
        hint = (
            f" It redirects to host {target!r}; redirects are never followed "
            "(the token is sent to the API base URL only): check the API base URL."
        )
    elif response.status_code == 401:
        hint = (
            f" The API at {api_base_url} refused the token: check that the API base URL is your "
            "account's region (CARTO Workspace > Developers)."
        )
    elif response.status_code == 403:
        hint = " The user behind these credentials lacks permission for this resource."
    elif response.status_code == 404:
        hint = " Check the API base URL and the resource name."
    return CartoAPIError(
        f"CARTO API {response.request.method if response.request else ''} {url} failed "
        f"(HTTP {response.status_code}: {detail}).{hint}",
        status=response.status_code,
        error=error or description,
        url=url,
    )


def api_unreachable_error(exc: Exception, *, api_base_url: str, url: str, timed_out: bool) -> CartoAPIError:
    """A CartoAPIError for an API that did not answer in time or at all (sync or async client)."""
    return CartoAPIError(
        unreachable_message(
            f"The CARTO API at {api_base_url}", exc, timed_out=timed_out, hint=API_UNREACHABLE_HINT
        ),
        url=redact_url(url),
    )


def authorized_request(
    session: requests.Session,
    tokens: TokenProvider,
    api_base_url: str,
    method: str,
    path: str,
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    raise_for_status: bool = True,
    **kwargs: Any,
) -> requests.Response:
    """Call ``{api_base_url}{path}`` with a bearer token; on 401 refresh the token once and retry once."""
    url = path if path.startswith(("http://", "https://")) else f"{api_base_url}/{path.lstrip('/')}"
    token = tokens(None)
    response = _send(
        session, method, url, token, policy=policy, timeout=timeout, api_base_url=api_base_url, **kwargs
    )
    if response.status_code == 401:
        token = tokens(token)
        response = _send(
            session, method, url, token, policy=policy, timeout=timeout, api_base_url=api_base_url, **kwargs
        )
    if raise_for_status and response.status_code >= 300:
        raise api_error(response, api_base_url=api_base_url, secrets=[token])
    return response


def _send(
    session: requests.Session,
    method: str,
    url: str,
    token: str,
    *,
    policy: RetryPolicy,
    timeout: float | tuple[float, float],
    api_base_url: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> requests.Response:

    import requests  # on first use: not at DAG-parse time

    all_headers = {"Accept": "application/json", **(headers or {}), "Authorization": f"Bearer {token}"}
    try:
        return send(session, method, url, policy=policy, timeout=timeout, headers=all_headers, **kwargs)
    except requests.RequestException as exc:
        raise api_unreachable_error(
            exc, api_base_url=api_base_url, url=url, timed_out=isinstance(exc, requests.Timeout)
        ) from None
