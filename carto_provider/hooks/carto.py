"""``CartoAuthHook``: CARTO tokens, API calls and the Data Warehouse client from an Airflow connection.

The connection (type ``carto``): host = API base URL, login = M2M client id, password = client
secret; extras ``auth_type``, ``auth_url``, ``org``, ``credentials_file``, ``token_cache_dir`` and
``bigquery_api_endpoint`` (see :mod:`carto_provider.provider_info`).

Importing this module is cheap: no I/O, and ``google.cloud.bigquery`` is imported only by
:meth:`CartoAuthHook.get_carto_dw_client`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook

from carto_provider.auth.carto_auth import M2M_CACHE_FILENAME, CartoAuth, default_cache_path
from carto_provider.auth.config import M2MCredentials, normalize_base_url, resolve_auth_url
from carto_provider.auth.errors import CartoAPIError, CartoError, CredentialsError, CredentialsFileError
from carto_provider.auth.http import DEFAULT_RETRY, DEFAULT_TIMEOUT, RetryPolicy
from carto_provider.provider_info import CONNECTION_EXTRA_FIELDS, UI_FIELD_BEHAVIOUR

if TYPE_CHECKING:
    import requests
    from google.cloud.bigquery import Client

AUTH_TYPES = ("m2m", "oauth")
#: test_connection must answer quickly, even when a host is down.
TEST_CONNECTION_RETRY = RetryPolicy(attempts=2, initial_wait=0.2, max_wait=1.0, max_retry_after=2.0)
TEST_CONNECTION_TIMEOUT = (5.0, 15.0)


@dataclass(frozen=True)
class CartoConnectionSettings:
    """What a ``carto`` Airflow connection says, validated. ``client_secret`` is never shown."""

    conn_id: str
    auth_type: str
    api_base_url: str | None
    client_id: str | None
    client_secret: str | None
    auth_url: str
    org: str | None = None
    credentials_file: str | None = None
    token_cache_dir: str | None = None
    bigquery_api_endpoint: str | None = None

    def __repr__(self) -> str:
        return (
            f"CartoConnectionSettings(conn_id={self.conn_id!r}, auth_type={self.auth_type!r}, "
            f"api_base_url={self.api_base_url!r}, client_id={self.client_id!r}, "
            f"client_secret={'***' if self.client_secret else None}, auth_url={self.auth_url!r})"
        )

    @classmethod
    def from_connection(cls, conn: Any) -> CartoConnectionSettings:
        """Read an Airflow ``Connection`` (ORM or Task SDK); extras from URIs arrive as strings."""
        conn_id = conn.conn_id or "carto"
        extra = conn.extra_dejson or {}

        def text(name: str) -> str | None:
            value = extra.get(name)
            if value is None:
                return None
            value = str(value).strip()
            return value or None

        auth_type = (text("auth_type") or "m2m").lower()
        if auth_type not in AUTH_TYPES:
            raise CredentialsFileError(
                f"Connection {conn_id!r}: auth_type must be 'm2m' or 'oauth', not {auth_type!r}."
            )
        host = (conn.host or "").strip() or None
        if host and conn.port and "://" not in host and ":" not in host:
            host = f"{host}:{conn.port}"
        return cls(
            conn_id=conn_id,
            auth_type=auth_type,
            api_base_url=normalize_base_url(host, what=f"API base URL of connection {conn_id!r}")
            if host
            else None,
            client_id=(conn.login or "").strip() or None,
            client_secret=(conn.password or "").strip() or None,
            auth_url=resolve_auth_url(text("auth_url")),
            org=text("org"),
            credentials_file=text("credentials_file"),
            token_cache_dir=text("token_cache_dir"),
            bigquery_api_endpoint=text("bigquery_api_endpoint"),
        )

    def m2m_credentials(self) -> M2MCredentials:
        """The M2M client: connection fields, falling back field by field to ``credentials_file``."""
        data: dict[str, Any] = {}
        source = f"Connection {self.conn_id!r}"
        if self.credentials_file:
            data.update(M2MCredentials.from_file(self.credentials_file).__dict__)
            source += f" (with credentials file {self.credentials_file!r})"
        for name, value in (
            ("api_base_url", self.api_base_url),
            ("client_id", self.client_id),
            ("client_secret", self.client_secret),
        ):
            if value:
                data[name] = value
        if not self.credentials_file or "auth_url" not in data:
            data["auth_url"] = self.auth_url
        names = {
            "api_base_url": "API Base URL (host)",
            "client_id": "Client ID (login)",
            "client_secret": "Client Secret (password)",
        }
        for name, shown in names.items():
            if not data.get(name):
                raise CredentialsFileError(
                    f"{source} has no {shown}; set it, or the extra 'credentials_file'."
                )
        return M2MCredentials.from_mapping(data, source=source)

    def cache_path(self, filename: str) -> Path:
        """Where this connection's tokens are cached."""
        if self.token_cache_dir:
            return Path(self.token_cache_dir).expanduser() / filename
        return default_cache_path(filename)


def _mask(value: str) -> None:
    from airflow.providers.common.compat.sdk import mask_secret

    mask_secret(value)


class CartoAuthHook(BaseHook):
    """Authenticates with CARTO using an Airflow connection of type ``carto``.

    :param carto_conn_id: the connection id (default ``carto_default``).
    :param retry_policy: how transient HTTP failures are retried.
    :param timeout: (connect, read) timeout in seconds of every HTTP call.
    """

    conn_name_attr = "carto_conn_id"
    default_conn_name = "carto_default"
    conn_type = "carto"
    hook_name = "CARTO"

    def __init__(
        self,
        carto_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy = DEFAULT_RETRY,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.carto_conn_id = carto_conn_id
        self.retry_policy = retry_policy
        self.timeout = timeout
        self._auth: CartoAuth | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(carto_conn_id={self.carto_conn_id!r})"

    # ------------------------------------------------------------------ connection form (Airflow 2.x-3.1)

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields for the Flask/FAB connection form (Airflow 3.2+ reads provider metadata instead)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        return {
            name: StringField(
                lazy_gettext(spec["label"]), widget=BS3TextFieldWidget(), description=spec["description"]
            )
            for name, spec in CONNECTION_EXTRA_FIELDS.items()
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabelled and hidden fields for the legacy form (same content as the provider metadata)."""
        return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}

    # ------------------------------------------------------------------ authentication

    @property
    def settings(self) -> CartoConnectionSettings:
        """The validated connection settings (read from Airflow on each access; cheap)."""
        return CartoConnectionSettings.from_connection(self.get_connection(self.carto_conn_id))

    def get_auth(self) -> CartoAuth:
        """The :class:`~carto_provider.auth.CartoAuth` for this connection (built once per hook)."""
        if self._auth is None:
            self._auth = self._build_auth(self.settings, self.retry_policy, self.timeout)
        return self._auth

    get_conn = get_auth

    @staticmethod
    def _build_auth(
        settings: CartoConnectionSettings, retry_policy: RetryPolicy, timeout: float | tuple[float, float]
    ) -> CartoAuth:
        common: dict[str, Any] = {
            "retry_policy": retry_policy,
            "timeout": timeout,
            "on_secret": _mask,
            "bigquery_api_endpoint": settings.bigquery_api_endpoint,
        }
        if settings.auth_type == "oauth":
            from carto_provider.auth.oauth import cached_login_auth

            return cached_login_auth(settings, **common)
        return CartoAuth.from_m2m_credentials(
            settings.m2m_credentials(), cache_filepath=settings.cache_path(M2M_CACHE_FILENAME), **common
        )

    def get_access_token(self, *, min_ttl: float = 0.0) -> str:
        """A valid CARTO access token, masked in task logs."""
        return self.get_auth().get_access_token(min_ttl=min_ttl)

    def get_api_base_url(self) -> str:
        """The CARTO API base URL of this connection."""
        return self.get_auth().get_api_base_url()

    def get_carto_dw_credentials(self) -> tuple[str, str]:
        """``(project_id, token)`` for the CARTO Data Warehouse; the token is masked in task logs."""
        return self.get_auth().get_carto_dw_credentials()

    def get_carto_dw_client(self, **client_kwargs: Any) -> Client:
        """A ``google.cloud.bigquery.Client`` for the CARTO Data Warehouse that refreshes its token."""
        return self.get_auth().get_carto_dw_client(**client_kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated CARTO API call (``path`` relative to the API base URL)."""
        return self.get_auth().request(method, path, **kwargs)

    # ------------------------------------------------------------------ connection test

    def test_connection(self) -> tuple[bool, str]:
        """Obtain a token and list the CARTO connections; never raises, never shows a secret."""
        secret = None
        try:
            settings = self.settings
            secret = settings.client_secret
            auth = self._build_auth(settings, TEST_CONNECTION_RETRY, TEST_CONNECTION_TIMEOUT)
            token = auth.get_token()
            response = auth.request("GET", "/v3/connections")
            body = response.json() if response.content else []
            count = (
                len(body)
                if isinstance(body, list)
                else len(body.get("data", []))
                if isinstance(body, dict)
                else 0
            )
            expires = dt.datetime.fromtimestamp(token.expires_at, tz=dt.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC"
            )
            ok, message = (
                True,
                (
                    f"Connected to CARTO at {auth.get_api_base_url()} ({auth.cache_key.label}); "
                    f"token valid until {expires}; {count} CARTO connection(s) visible."
                ),
            )
        except CredentialsFileError as exc:
            ok, message = False, f"Connection settings: {exc}"
        except CredentialsError as exc:
            ok, message = False, f"Authentication failed: {exc}"
        except CartoAPIError as exc:
            ok, message = False, f"Token obtained, but the CARTO API call failed: {exc}"
        except CartoError as exc:
            ok, message = False, str(exc)
        except Exception as exc:
            ok, message = False, f"Unexpected {type(exc).__name__} while testing the CARTO connection."
        if secret:
            message = message.replace(secret, "***")
        return ok, message
