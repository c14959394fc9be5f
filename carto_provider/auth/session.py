"""The error of a failed CARTO API call made by :meth:`CartoAuth.request` (on the package's transport)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from carto_provider.auth.http import (
    error_detail,
    error_fields,
    redact_url,
)
from carto_provider.auth.untrusted import location_host
from carto_provider.errors import CartoAPIError

if TYPE_CHECKING:
    import httpx

API_UNREACHABLE_HINT = "Check the API base URL and the network."

#: Called with a token value the server refused; returns a replacement.
TokenProvider = Callable[[str | None], str]


def api_error(
    response: httpx.Response,
    *,
    api_base_url: str,
    secrets: Iterable[str | None] = (),
    hints: Mapping[int, str] | None = None,
) -> CartoAPIError:
    """A CartoAPIError with CARTO's ``error`` text (``secrets`` redacted), the status and what to check
    (``hints``: advice per status replacing the default one)."""
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
    if hints and response.status_code in hints:
        hint = hints[response.status_code]
    return CartoAPIError(
        f"CARTO API {response.request.method if response.request else ''} {url} failed "
        f"(HTTP {response.status_code}: {detail}).{hint}",
        status=response.status_code,
        error=error or description,
        url=url,
    )
