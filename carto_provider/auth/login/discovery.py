"""Finding a user's CARTO API base URL after an interactive login, the way CARTO's own clients do.

1. ``GET <accounts URL>`` with the new token answers the user's ``tenant_domain`` (and e-mail);
2. ``GET https://<tenant_domain>/config.yaml`` (no token) gives ``apis.baseUrl``.

The accounts URL is :attr:`AuthSettings.accounts_url` (``$CARTO_ACCOUNTS_URL``, read at the edge) when
set; otherwise ``<auth URL>/accounts`` when the auth URL is on loopback (the CARTO emulator serves
both), else CARTO's ``https://accounts.app.carto.com/accounts``.
The tenant's ``config.yaml`` is fetched over https, or plain http for a loopback tenant (the emulator).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from carto_provider.api.responses import response_body
from carto_provider.api.retry import DEFAULT_RETRY, CartoRetryPolicy
from carto_provider.api.transport import DEFAULT_TIMEOUT
from carto_provider.api.untrusted import redact
from carto_provider.auth._http import auth_flow_call
from carto_provider.auth.settings import AuthSettings
from carto_provider.auth.urls import check_authority, is_loopback_host, shown
from carto_provider.errors import CredentialsAPIError, CredentialsConfigError

#: The settings of a caller that gives none: the defaults, never the environment.
DEFAULT_SETTINGS = AuthSettings()
_HINT = (
    "Give your API base URL instead (`carto-provider login --api-base-url URL`, or "
    "from_oauth(api_base_url=...)); CARTO Workspace > Developers shows it."
)

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Account:
    """What discovery learnt about the logged-in user."""

    api_base_url: str
    tenant_domain: str
    email: str | None = None


def config_url(tenant_domain: str) -> str:
    """The tenant's ``config.yaml`` URL; ``tenant_domain`` must be a bare host name with optional port."""
    domain = tenant_domain.strip()
    try:
        host, _ = check_authority(domain, what="tenant_domain", value=domain)
    except CredentialsConfigError:
        raise CredentialsAPIError(
            f"CARTO's accounts service gave an unusable tenant_domain {shown(domain)}. {_HINT}"
        ) from None
    return f"{'http' if is_loopback_host(host) else 'https'}://{domain}/config.yaml"


def _get(
    url: str,
    *,
    what: str,
    policy: CartoRetryPolicy,
    timeout: float | tuple[float, float],
    headers: dict[str, str] | None = None,
    secrets: tuple[str, ...] = (),
) -> httpx.Response:
    return auth_flow_call(
        "GET",
        url,
        where=f"{what} at {url}",
        hint=_HINT,
        error=functools.partial(CredentialsAPIError, url=url),
        secrets=secrets,
        policy=policy,
        timeout=timeout,
        headers=headers or {},
    )


def _account_fields(body: Any, url: str, token: str) -> tuple[str, str | None]:
    if not isinstance(body, dict):
        raise CredentialsAPIError(
            f"CARTO's accounts service at {url} did not answer a JSON object. {_HINT}", url=url
        )
    if body.get("error"):
        raise CredentialsAPIError(
            f"CARTO's accounts service at {url} refused: {redact(str(body['error']), [token])}. {_HINT}",
            error=redact(str(body["error"]), [token]),
            url=url,
        )
    domain = body.get("tenant_domain")
    if not isinstance(domain, str) or not domain.strip():
        raise CredentialsAPIError(
            f"CARTO's accounts service at {url} did not say which CARTO tenant you use (no tenant_domain). "
            f"{_HINT}",
            url=url,
        )
    email = next((body[k] for k in ("email", "user_email") if isinstance(body.get(k), str)), None)
    return domain.strip(), email


def _base_url_from_config(text: str, url: str, settings: AuthSettings) -> str:
    import yaml  # PyYAML: CARTO publishes the tenant configuration as YAML

    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        config = None
    apis = config.get("apis") if isinstance(config, dict) else None
    base = apis.get("baseUrl") if isinstance(apis, dict) else None
    if not isinstance(base, str) or not base.strip():
        raise CredentialsAPIError(
            f"The CARTO tenant configuration {url} has no apis.baseUrl. {_HINT}", url=url
        )
    try:
        return settings.check_base_url(base, what=f"API base URL in {url}")
    except CredentialsConfigError as exc:
        raise CredentialsAPIError(f"{exc} {_HINT}", url=url) from None


def discover_account(
    access_token: str,
    *,
    auth_url: str,
    settings: AuthSettings = DEFAULT_SETTINGS,
    policy: CartoRetryPolicy = DEFAULT_RETRY,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
) -> Account:
    """The API base URL (and e-mail, when CARTO tells it) of the user who owns ``access_token``
    (``settings``: the accounts URL and the hosts allowed over plain http)."""
    accounts_url = settings.accounts_url_for(auth_url)
    response = _get(
        accounts_url,
        what="CARTO's accounts service",
        policy=policy,
        timeout=timeout,
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        secrets=(access_token,),
    )
    tenant_domain, email = _account_fields(response_body(response), accounts_url, access_token)
    tenant_config = config_url(tenant_domain)
    response = _get(tenant_config, what="The CARTO tenant configuration", policy=policy, timeout=timeout)
    return Account(_base_url_from_config(response.text, tenant_config, settings), tenant_domain, email)
