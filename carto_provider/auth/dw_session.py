"""The HTTP session of the CARTO Data Warehouse's BigQuery client: an explicit timeout on every call,
and a BigQuery endpoint that cannot be reached named in the error instead of minutes of silent retries.

google-cloud-bigquery passes ``timeout=None`` (wait forever) for some calls, and retries connection
errors for up to ten minutes without a word; pointed at the wrong endpoint (e.g. Google's, from a
machine that only reaches the CARTO emulator) a task hung for minutes. Here every request gets
:data:`BIGQUERY_TIMEOUT` unless the caller set one, a connection that cannot be set up is tried
:data:`CONNECT_ATTEMPTS` times, then fails with :class:`BigQueryEndpointError` naming the endpoint
(not one of the errors BigQuery's own retry repeats), and so does a read timeout.
"""

from __future__ import annotations

import time
from typing import Any

from carto_provider.errors import CartoAPIError

#: (connect, read) seconds of a BigQuery call that did not set its own timeout.
BIGQUERY_TIMEOUT: tuple[float, float] = (10.0, 120.0)
#: Attempts to connect before the endpoint is reported unreachable (nothing was sent: safe to repeat).
CONNECT_ATTEMPTS = 3
GOOGLE_BIGQUERY_ENDPOINT = "https://bigquery.googleapis.com"


class BigQueryEndpointError(CartoAPIError):
    """The BigQuery endpoint of the CARTO Data Warehouse client could not be reached or did not answer."""


def _hint(endpoint: str) -> str:
    if endpoint == GOOGLE_BIGQUERY_ENDPOINT:
        return (
            " Against a private BigQuery endpoint or the CARTO emulator, set the connection extra "
            "bigquery_api_endpoint (`carto-provider emulator` prints a connection that has it)."
        )
    return " Check the connection extra bigquery_api_endpoint."


def dw_session(credentials: Any, *, endpoint: str | None, timeout: Any = BIGQUERY_TIMEOUT) -> Any:
    """A google-auth ``AuthorizedSession`` for ``credentials`` with the behaviour of the module doc."""
    import requests
    from google.auth.transport.requests import AuthorizedSession

    where = (endpoint or GOOGLE_BIGQUERY_ENDPOINT).rstrip("/")

    class DWSession(AuthorizedSession):  # type: ignore[misc]
        def request(  # type: ignore[override]  # google-auth's own signature
            self,
            method: Any,
            url: Any,
            data: Any = None,
            headers: Any = None,
            max_allowed_time: Any = None,
            timeout: Any = None,
            **kwargs: Any,
        ) -> Any:
            timeout = default_timeout if timeout is None else timeout
            for attempt in range(1, CONNECT_ATTEMPTS + 1):
                try:
                    return super().request(
                        method,
                        url,
                        data,
                        headers,
                        max_allowed_time=max_allowed_time,
                        timeout=timeout,
                        **kwargs,
                    )
                except requests.exceptions.ConnectTimeout as exc:
                    failure: Exception = exc
                except requests.exceptions.ReadTimeout:
                    raise BigQueryEndpointError(
                        f"The BigQuery endpoint {where} did not answer {method} within {timeout} s."
                        + _hint(where),
                        url=where,
                    ) from None
                except requests.exceptions.ConnectionError as exc:
                    failure = exc
                if attempt < CONNECT_ATTEMPTS:
                    time.sleep(0.5 * attempt)
            raise BigQueryEndpointError(
                f"Could not reach the BigQuery endpoint {where} ({type(failure).__name__}, "
                f"{CONNECT_ATTEMPTS} attempts).{_hint(where)}",
                url=where,
            ) from None

    default_timeout = timeout
    return DWSession(credentials)
