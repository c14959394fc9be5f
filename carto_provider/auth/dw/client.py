"""The CARTO Data Warehouse: a BigQuery client whose credentials refresh themselves.

CARTO's ``GET /v3/connections/carto-dw/token`` returns ``{"projectId": ..., "token": ...}`` with no
lifetime. The token is a Google access token (those live 60 minutes), but CARTO does not say when it
was minted, so we assume :data:`DW_TOKEN_ASSUMED_LIFETIME` (30 minutes, half a Google token's life)
and google-auth refreshes 3 min 45 s before that, i.e. about every 26 minutes. When the assumption is
wrong (the token was older, or revoked), BigQuery answers 401 and google-auth's ``AuthorizedSession``
refreshes once and retries the request: that is the safety net, and the only path a token shorter
than assumed takes.

Nothing here imports ``google.cloud.bigquery`` until a client is built.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from carto_provider.errors import CartoError, CredentialsAPIError

if TYPE_CHECKING:
    from google.cloud.bigquery import Client
    from google.oauth2.credentials import Credentials

log = logging.getLogger(__name__)

DW_TOKEN_PATH = "/v3/connections/carto-dw/token"
#: Seconds we trust a DW token for. google-auth refreshes 3 min 45 s before the expiry we report.
DW_TOKEN_ASSUMED_LIFETIME = 30 * 60
#: google-auth refuses an expiry closer than its REFRESH_THRESHOLD (3 min 45 s); stay above it.
MIN_DW_TOKEN_LIFETIME = 300
#: What to install when the BigQuery client libraries are missing.
BIGQUERY_REQUIREMENT = "pip install 'airflow-provider-carto[bigquery]'"

DWCredentialsSource = Callable[[], tuple[str, str]]
Clock = Callable[[], dt.datetime]


def utc_now_naive() -> dt.datetime:
    """Now in UTC without tzinfo: the form google-auth compares ``expiry`` with."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def parse_dw_token_response(body: Any, *, api_base_url: str) -> tuple[str, str]:
    """``(project_id, token)`` from the DW token endpoint's JSON, or a clear CredentialsAPIError."""
    if isinstance(body, dict):
        project, token = body.get("projectId"), body.get("token")
        if isinstance(project, str) and project and isinstance(token, str) and token:
            return project, token
    raise CredentialsAPIError(
        f"The CARTO API at {api_base_url} answered {DW_TOKEN_PATH} without projectId and token; "
        "check that the CARTO Data Warehouse is enabled for this account.",
        url=f"{api_base_url}{DW_TOKEN_PATH}",
    )


def import_bigquery() -> tuple[Any, Any, Any]:
    """``(google.cloud.bigquery, google.oauth2.credentials, google.auth.exceptions)``, or an ImportError
    that says what to install."""
    try:
        bigquery = importlib.import_module("google.cloud.bigquery")
        google_credentials = importlib.import_module("google.oauth2.credentials")
        google_exceptions = importlib.import_module("google.auth.exceptions")
    except ImportError as exc:
        raise ImportError(
            "get_carto_dw_client() needs google-cloud-bigquery and google-auth "
            f"({exc}): {BIGQUERY_REQUIREMENT}"
        ) from exc
    return bigquery, google_credentials, google_exceptions


def dw_credentials(
    source: DWCredentialsSource,
    *,
    token_lifetime: float = DW_TOKEN_ASSUMED_LIFETIME,
    clock: Clock = utc_now_naive,
) -> tuple[str, Credentials]:
    """``(project_id, credentials)``: google-auth credentials that refresh through ``source``.

    ``source`` returns a fresh ``(project_id, token)`` on each call. Each token is reported to expire
    ``token_lifetime`` seconds (at least :data:`MIN_DW_TOKEN_LIFETIME`) after ``clock()``, which must
    be naive UTC like google-auth's own clock.
    """
    _, google_credentials, google_exceptions = import_bigquery()
    lifetime = dt.timedelta(seconds=max(float(token_lifetime), MIN_DW_TOKEN_LIFETIME))
    project_id, token = source()

    def refresh_handler(request: Any, scopes: Any) -> tuple[str, dt.datetime]:
        try:
            refreshed_project, fresh_token = source()
        except CartoError as exc:
            raise google_exceptions.RefreshError(
                f"Could not refresh the CARTO Data Warehouse token: {exc}"
            ) from exc
        log.info("Refreshed the CARTO Data Warehouse token for project %s", refreshed_project)
        return fresh_token, clock() + lifetime

    credentials = google_credentials.Credentials(
        token=token, expiry=clock() + lifetime, refresh_handler=refresh_handler
    )
    return project_id, credentials


def build_dw_client(
    source: DWCredentialsSource,
    *,
    api_endpoint: str | None = None,
    token_lifetime: float = DW_TOKEN_ASSUMED_LIFETIME,
    clock: Clock = utc_now_naive,
    **client_kwargs: Any,
) -> Client:
    """A ``google.cloud.bigquery.Client`` for the DW project whose token refreshes through ``source``.

    ``api_endpoint`` overrides BigQuery's endpoint (the emulator, private endpoints); ``client_kwargs``
    go to ``Client`` (``project`` defaults to the DW project).
    """
    bigquery, _, _ = import_bigquery()
    project_id, credentials = dw_credentials(source, token_lifetime=token_lifetime, clock=clock)
    if api_endpoint:
        options = client_kwargs.pop("client_options", None) or {}
        if not isinstance(options, dict):  # a ClientOptions object
            options = {k: v for k, v in vars(options).items() if v is not None}
        client_kwargs["client_options"] = {**options, "api_endpoint": api_endpoint}
    client_kwargs.setdefault("project", project_id)
    # Every BigQuery call gets a timeout, and an unreachable endpoint is named (eco, issue 13).
    from carto_provider.auth.dw._session import BIGQUERY_TIMEOUT, dw_session

    timeout = client_kwargs.pop("bigquery_timeout", BIGQUERY_TIMEOUT)
    client_kwargs.setdefault("_http", dw_session(credentials, endpoint=api_endpoint, timeout=timeout))
    return bigquery.Client(credentials=credentials, **client_kwargs)
