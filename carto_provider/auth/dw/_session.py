"""The HTTP session of the CARTO Data Warehouse's BigQuery client: an explicit timeout on every call,
and a BigQuery endpoint that cannot be reached named in the error instead of minutes of silent retries.

google-cloud-bigquery passes ``timeout=None`` (wait forever) for some calls, and retries connection
errors for up to ten minutes without a word; pointed at the wrong endpoint (e.g. Google's, from a
machine that only reaches the CARTO emulator) a task hung for minutes. Here every request gets
:data:`BIGQUERY_TIMEOUT` unless the caller set one, a connection that cannot be set up is retried
under :data:`BIGQUERY_CONNECT_RETRY` (the package's one retry configuration, :mod:`carto_provider.api.retry`),
then fails with :class:`BigQueryEndpointError` naming the endpoint (not one of the errors BigQuery's
own retry repeats), and so does a read timeout, at once. Only a connection that was never set up is
tried again (:func:`never_sent`): a connection reset after the request went out may mean BigQuery got
it, and a repeated ``POST`` (a query job, a load) could run twice.
"""

from __future__ import annotations

import functools
from typing import Any

from carto_provider.api.retry import CartoRetryPolicy, retry_arguments
from carto_provider.errors import BigQueryEndpointError

#: (connect, read) seconds of a BigQuery call that did not set its own timeout.
BIGQUERY_TIMEOUT: tuple[float, float] = (10.0, 120.0)
#: Connection failures are tried again this way before the endpoint is reported unreachable.
BIGQUERY_CONNECT_RETRY = CartoRetryPolicy(attempts=3, initial_wait=0.5, max_wait=1.0)
CONNECT_ATTEMPTS = BIGQUERY_CONNECT_RETRY.attempts
GOOGLE_BIGQUERY_ENDPOINT = "https://bigquery.googleapis.com"


def _hint(endpoint: str) -> str:
    if endpoint == GOOGLE_BIGQUERY_ENDPOINT:
        return (
            " Against a private BigQuery endpoint or the CARTO emulator, set the connection extra "
            "bigquery_api_endpoint (`carto-provider emulator` prints a connection that has it)."
        )
    return " Check the connection extra bigquery_api_endpoint."


def never_sent(exc: BaseException) -> bool:
    """True when ``exc`` (from requests) means the request never left: no TCP connection was made."""
    import requests
    import urllib3

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError) or not exc.args:
        return False
    reason = getattr(exc.args[0], "reason", exc.args[0])  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


def dw_session(credentials: Any, *, endpoint: str | None, timeout: Any = BIGQUERY_TIMEOUT) -> Any:
    """A google-auth ``AuthorizedSession`` for ``credentials`` with the behaviour of the module doc."""
    import requests
    import tenacity
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
            send = functools.partial(
                super().request,
                method,
                url,
                data,
                headers,
                max_allowed_time=max_allowed_time,
                timeout=timeout,
            )
            try:
                return tenacity.Retrying(**connect_retry)(send, **kwargs)
            except requests.exceptions.ReadTimeout:
                raise BigQueryEndpointError(
                    f"The BigQuery endpoint {where} did not answer {method} within {timeout} s."
                    + _hint(where),
                    url=where,
                ) from None
            except requests.exceptions.ConnectionError as exc:  # ConnectTimeout included
                tries = (
                    f"{CONNECT_ATTEMPTS} attempts" if never_sent(exc) else "not repeated: it may have arrived"
                )
                raise BigQueryEndpointError(
                    f"Could not reach the BigQuery endpoint {where} ({type(exc).__name__}, {tries})."
                    + _hint(where),
                    url=where,
                ) from None

    default_timeout = timeout
    # A connection that could not be set up is retried; one that broke after sending is not.
    connect_retry = retry_arguments(
        BIGQUERY_CONNECT_RETRY,
        at_most_once=True,
        label=f"BigQuery call to {where}",
        errors=(requests.exceptions.ConnectionError,),
    )
    connect_retry["retry"] = tenacity.retry_if_exception(never_sent)
    return DWSession(credentials)
