"""The CARTO Data Warehouse: a BigQuery client whose credentials refresh themselves.

CARTO's ``GET /v3/connections/carto-dw/token`` returns ``{"projectId": ..., "token": ...}`` with no
lifetime. The token is a Google access token (those live 60 minutes), but CARTO does not say when it
was minted, so we assume a conservative :data:`DW_TOKEN_ASSUMED_LIFETIME` and let google-auth refresh
before that; a 401 from BigQuery (token revoked or older than we assumed) makes google-auth refresh
and retry, which is the safety net.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from carto_provider.auth.errors import CartoAPIError

if TYPE_CHECKING:
    from google.cloud.bigquery import Client

DW_TOKEN_PATH = "/v3/connections/carto-dw/token"
#: Seconds we trust a DW token for. google-auth refreshes 3 min 45 s before the expiry we report.
DW_TOKEN_ASSUMED_LIFETIME = 30 * 60
#: google-auth refuses an expiry closer than its REFRESH_THRESHOLD (3 min 45 s); stay above it.
MIN_DW_TOKEN_LIFETIME = 300

DWCredentialsSource = Callable[[], tuple[str, str]]


def parse_dw_token_response(body: Any, *, api_base_url: str) -> tuple[str, str]:
    """``(project_id, token)`` from the DW token endpoint's JSON, or a clear CartoAPIError."""
    if isinstance(body, dict):
        project, token = body.get("projectId"), body.get("token")
        if isinstance(project, str) and project and isinstance(token, str) and token:
            return project, token
    raise CartoAPIError(
        f"The CARTO API at {api_base_url} answered {DW_TOKEN_PATH} without projectId and token; "
        "check that the CARTO Data Warehouse is enabled for this account."
    )


def _import_bigquery() -> Any:
    try:
        from google.cloud import bigquery
        from google.oauth2 import credentials as google_credentials
    except ImportError as exc:  # pragma: no cover - both are dependencies of this package
        raise ImportError(
            "get_carto_dw_client() needs google-cloud-bigquery and google-auth: "
            "pip install 'google-cloud-bigquery>=3.20' 'google-auth>=2.30'"
        ) from exc
    return bigquery, google_credentials


def build_dw_client(
    source: DWCredentialsSource,
    *,
    api_endpoint: str | None = None,
    token_lifetime: float = DW_TOKEN_ASSUMED_LIFETIME,
    **client_kwargs: Any,
) -> Client:
    """A ``google.cloud.bigquery.Client`` for the DW project whose token refreshes through ``source``.

    ``source`` returns a fresh ``(project_id, token)`` on each call. ``api_endpoint`` overrides
    BigQuery's endpoint (the emulator, private endpoints); ``client_kwargs`` go to ``Client``.
    """
    bigquery, google_credentials = _import_bigquery()
    lifetime = max(float(token_lifetime), MIN_DW_TOKEN_LIFETIME)

    def expiry() -> dt.datetime:
        # google-auth compares against a naive UTC "now" (see airflow-provider.md §5.6).
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=lifetime)

    def refresh_handler(request: Any, scopes: Any) -> tuple[str, dt.datetime]:
        _, fresh_token = source()
        return fresh_token, expiry()

    project_id, token = source()
    credentials = google_credentials.Credentials(
        token=token, expiry=expiry(), refresh_handler=refresh_handler
    )
    if api_endpoint:
        options = dict(client_kwargs.pop("client_options", None) or {})
        options["api_endpoint"] = api_endpoint
        client_kwargs["client_options"] = options
    client_kwargs.setdefault("project", project_id)
    return bigquery.Client(credentials=credentials, **client_kwargs)
