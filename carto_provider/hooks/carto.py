"""``CartoAuthHook``: CARTO tokens, API calls and the Data Warehouse client from an Airflow connection.

The connection (type ``carto``): host = API base URL, login = M2M client id, password = client
secret (``auth_type`` ``api_token``: no login, the API access token in the password field); extras
``auth_type``, ``auth_url``, ``org``, ``credentials_file``, ``cache_dir``, ``cache_backend``,
``cache_redis_url``, ``carto_connection`` and ``bigquery_api_endpoint`` (see
:mod:`carto_provider.provider_info`). ``cache_backend`` and ``cache_redis_url`` default to the
Airflow config options ``[carto] token_cache`` and ``[carto] token_cache_redis_url``. The pre-1.0
names (``token_*``) are read with a warning until 2.0 (``_hook_params.DEPRECATED_EXTRAS``).

Importing this module is cheap: no I/O, and ``google.cloud.bigquery`` is imported only by
:meth:`CartoAuthHook.get_carto_dw_client`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import BaseHook

from carto_provider._hook_params import renamed_extras, split_hook_params
from carto_provider.api.bounded import DEFAULT_MAX_BODY, check_timeout
from carto_provider.api.retry import DEFAULT_RETRY, CartoRetryPolicy
from carto_provider.api.transport import DEFAULT_TIMEOUT
from carto_provider.auth.api_token import api_token_auth, probe_api_token
from carto_provider.auth.cache.policy import DEFAULT_LOCK_TIMEOUT, TokenCache
from carto_provider.auth.carto_auth import CartoAuth, single_flight_wait
from carto_provider.auth.settings import (
    M2M_CACHE_FILENAME,
    OAUTH_CACHE_FILENAME,
    AuthSettings,
    M2MCredentials,
    default_cache_path,
)
from carto_provider.auth.urls import connection_base_url
from carto_provider.errors import (
    CartoAPIError,
    CartoError,
    ConfigurationError,
    CredentialsConfigError,
    CredentialsError,
)
from carto_provider.provider_info import CONNECTION_EXTRA_FIELDS, UI_FIELD_BEHAVIOUR

if TYPE_CHECKING:
    import httpx
    from google.cloud.bigquery import Client

AUTH_TYPES = ("m2m", "oauth", "api_token")
TOKEN_CACHES = ("local", "redis")
#: test_connection must answer quickly, even when a host is down.
TEST_CONNECTION_RETRY = CartoRetryPolicy(attempts=2, initial_wait=0.2, max_wait=1.0, max_retry_after=2.0)
TEST_CONNECTION_TIMEOUT = (5.0, 15.0)
MIN_MASKED_SECRET = 5  # Airflow's masker skips shorter secrets too: replacing "e" garbles every word


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
    cache_dir: str | None = None
    bigquery_api_endpoint: str | None = None
    cache_backend: str = "local"
    cache_redis_url: str | None = None  # may hold a password: never shown
    carto_connection: str | None = None
    auth: AuthSettings = field(default_factory=AuthSettings)  # the environment's, read once

    def __repr__(self) -> str:
        return (
            f"CartoConnectionSettings(conn_id={self.conn_id!r}, auth_type={self.auth_type!r}, "
            f"api_base_url={self.api_base_url!r}, client_id={self.client_id!r}, "
            f"client_secret={'***' if self.client_secret else None}, auth_url={self.auth_url!r})"
        )

    @classmethod
    def from_connection(cls, conn: Any, extra: dict[str, Any] | None = None) -> CartoConnectionSettings:
        """Read an Airflow ``Connection`` (ORM or Task SDK); extras from URIs arrive as strings.

        ``extra`` is the connection's extra already read (async code reads it with
        ``get_async_extra_dejson``, because ``extra_dejson`` blocks the event loop).
        """
        auth = AuthSettings.from_environment()
        conn_id = conn.conn_id or "carto"
        extra = renamed_extras(conn_id, (conn.extra_dejson if extra is None else extra) or {})

        def text(name: str) -> str | None:
            value = extra.get(name)
            if value is None:
                return None
            value = str(value).strip()
            return value or None

        auth_type = (text("auth_type") or "m2m").lower()
        if auth_type not in AUTH_TYPES:
            raise CredentialsConfigError(
                f"Connection {conn_id!r}: auth_type must be 'm2m', 'oauth' or 'api_token', not {auth_type!r}."
            )
        backend = (text("cache_backend") or _carto_option("token_cache") or "local").lower()
        if backend not in TOKEN_CACHES:
            raise CredentialsConfigError(
                f"Connection {conn_id!r}: cache_backend must be 'local' or 'redis', not {backend!r}."
            )
        redis_url = text("cache_redis_url") or _carto_option("token_cache_redis_url")
        if backend == "redis" and not redis_url:
            raise CredentialsConfigError(
                f"Connection {conn_id!r} has cache_backend 'redis' but no Redis URL; set the extra "
                "'cache_redis_url' or the Airflow option [carto] token_cache_redis_url."
            )
        host = connection_base_url(conn.host, conn.port, conn.schema)
        bigquery = text("bigquery_api_endpoint")
        return cls(
            conn_id=conn_id,
            auth_type=auth_type,
            api_base_url=auth.check_base_url(host, what=f"API base URL of connection {conn_id!r}")
            if host
            else None,
            client_id=(conn.login or "").strip() or None,
            client_secret=(conn.password or "").strip() or None,
            auth_url=auth.resolve_auth_url(text("auth_url")),
            org=text("org"),
            credentials_file=text("credentials_file"),
            cache_dir=text("cache_dir"),
            # It carries the Data Warehouse token: the same URL rules as the API base URL.
            bigquery_api_endpoint=auth.check_base_url(bigquery, what=f"bigquery_api_endpoint of {conn_id!r}")
            if bigquery
            else None,
            cache_backend=backend,
            cache_redis_url=redis_url,
            carto_connection=text("carto_connection"),
            auth=auth,
        )

    def m2m_credentials(self) -> M2MCredentials:
        """The M2M client: the connection's host, login and password, or a ``credentials_file`` used
        whole (the connection's ``auth_url`` applies when the file names none)."""
        source = f"Connection {self.conn_id!r}"
        if self.credentials_file:
            given = [n for n, v in (("host", self.api_base_url), ("login", self.client_id)) if v]
            if given or self.client_secret:
                raise CredentialsConfigError(
                    f"{source} sets the extra 'credentials_file' and {', '.join(given or ['password'])}: a "
                    "credentials file is used whole, not mixed with the connection's fields; keep one."
                )
            path = allowed_credentials_file(self.credentials_file, source)
            return M2MCredentials.from_file(path, auth_url=self.auth_url, settings=self.auth)
        data = {
            "api_base_url": self.api_base_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "auth_url": self.auth_url,
        }
        names = {
            "api_base_url": "API Base URL (host)",
            "client_id": "Client ID (login)",
            "client_secret": "Client Secret (password)",
        }
        for name, shown in names.items():
            if not data.get(name):
                raise CredentialsConfigError(
                    f"{source} has no {shown}; set it, or the extra 'credentials_file'."
                )
        return M2MCredentials.from_mapping(data, source=source, settings=self.auth)

    def cache_path(self, filename: str) -> Path:
        """Where this connection's tokens are cached."""
        return default_cache_path(filename, self.cache_dir)

    def m2m_token_cache(
        self, credentials: M2MCredentials, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> TokenCache:
        """This machine's file cache (waiting ``lock_timeout`` s at most for another process's fetch),
        or the fleet-wide Redis store with that file as fallback when ``cache_backend`` is redis."""
        local = TokenCache(self.cache_path(M2M_CACHE_FILENAME), lock_timeout=lock_timeout)
        if self.cache_backend != "redis" or not self.cache_redis_url:
            return local
        from carto_provider.auth.cache.redis import RedisTokenCache

        return RedisTokenCache(self.cache_redis_url, credentials.client_secret, local=local)


def _secrets_of(settings: CartoConnectionSettings) -> list[str]:
    """Values of a connection that must never appear in a message."""
    found = [settings.client_secret or ""]
    if settings.cache_redis_url:
        found += [settings.cache_redis_url, urlsplit(settings.cache_redis_url).password or ""]
    return [value for value in found if value]


def _auth_failure(exc: CredentialsError) -> str:
    """A failed token request: the user's settings, or (429, 5xx) CARTO's auth server having trouble."""
    if exc.status is not None and (exc.status == 429 or exc.status >= 500):
        return (
            f"CARTO's auth server is unavailable (HTTP {exc.status}), so the settings could not be checked; "
            f"try again in a few minutes. Details: {exc}"
        )
    return f"Authentication failed: {exc}"


def _probe_api(auth: CartoAuth, expires_at: float) -> str:
    """One cheap authenticated call (``GET /v3/connections``); the success message of a connection test."""
    response = auth.request("GET", "/v3/connections")
    try:
        body = response.json()
    except (ValueError, RecursionError):
        raise CartoAPIError(
            f"{auth.get_api_base_url()} answered /v3/connections with something that is not CARTO's JSON; "
            "check the API Base URL (CARTO Workspace > Developers, e.g. https://gcp-us-east1.api.carto.com).",
            status=response.status_code,
        ) from None
    items = body if isinstance(body, list) else body.get("data") if isinstance(body, dict) else None
    visible = f"; {len(items)} CARTO connection(s) visible" if isinstance(items, list) else ""
    expires = dt.datetime.fromtimestamp(expires_at, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Connected to CARTO at {auth.get_api_base_url()} ({auth.cache_key.label}); "
        f"token valid until {expires}{visible}."
    )


def _carto_option(name: str) -> str | None:
    """An option of the ``[carto]`` section of the Airflow config (env ``AIRFLOW__CARTO__<NAME>``)."""
    from airflow.providers.common.compat.sdk import conf

    value = conf.get("carto", name, fallback=None)
    if value is None:
        return None
    return str(value).strip() or None


def allowed_credentials_file(path: str, source: str) -> Path:
    """``path`` resolved (symbolic links followed), if it lies in a directory of the Airflow option
    ``[carto] credentials_file_dirs``; else CredentialsConfigError (the option is empty by default)."""
    listed = (_carto_option("credentials_file_dirs") or "").split(",")
    dirs = [Path(d.strip()).expanduser().resolve() for d in listed if d.strip()]
    resolved = Path(path).expanduser().resolve()
    if not any(resolved.is_relative_to(d) for d in dirs):
        raise CredentialsConfigError(
            f"{source}: the credentials file {path!r} is not in a directory of the Airflow option "
            "[carto] credentials_file_dirs (empty by default, so no credentials file is read); list its "
            "directory there (AIRFLOW__CARTO__CREDENTIALS_FILE_DIRS), or use login and password."
        )
    return resolved


def _mask(value: str) -> None:
    from airflow.providers.common.compat.sdk import mask_secret

    mask_secret(value)


class CartoAuthHook(BaseHook):
    """Authenticates with CARTO using an Airflow connection of type ``carto``.

    :param carto_conn_id: the connection id (default ``carto_default``).
    :param retry_policy: how transient HTTP failures are retried (None: the default; tokens: token_retry).
    :param timeout: (connect, read) timeout in seconds of every HTTP call; one attempt (connect and
        every read together) ends after ``connect + read`` at the latest. Finite and above 0, else a
        ConfigurationError here.
    :param max_response_bytes: the largest API answer read, counted after decoding (default
        :data:`~carto_provider.api.bounded.DEFAULT_MAX_BODY`, 256 MiB); a larger one (a ``/query``
        of too many rows, a gzip bomb) is refused as soon as it passes this.
    :param kwargs: the connection's extra fields (``auth_url``, ``cache_backend``...) override the
        connection's values; other names are checked as :mod:`carto_provider._hook_params` says.
    """

    conn_name_attr = "carto_conn_id"
    default_conn_name = "carto_default"
    conn_type = "carto"
    hook_name = "CARTO"
    #: Keyword arguments passed on to the base class (subclasses with other bases add theirs).
    base_hook_params: frozenset[str] = frozenset({"logger_name"})

    def __init__(
        self,
        carto_conn_id: str = default_conn_name,
        *,
        retry_policy: CartoRetryPolicy | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_BODY,
        **kwargs: Any,
    ) -> None:
        check_timeout(timeout)
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes <= 0
        ):
            raise ConfigurationError(
                f"max_response_bytes must be a number of bytes above 0, not {max_response_bytes!r}."
            )
        self.max_response_bytes = max_response_bytes
        self.hook_params, for_base = split_hook_params(type(self).__name__, kwargs, self.base_hook_params)
        super().__init__(**for_base)
        self.carto_conn_id = carto_conn_id
        self.retry_policy = retry_policy or DEFAULT_RETRY
        #: The token requests' policy: the chosen ``retry_policy``, else (None) the settings' token_retry.
        self.token_retry = retry_policy
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
                lazy_gettext(spec["label"]),
                widget=BS3TextFieldWidget(),
                description=spec["description"],
                default=spec["schema"].get("default"),
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
        conn = self.get_connection(self.carto_conn_id)
        extra = self.hook_params.extra_of(self.carto_conn_id, conn.extra_dejson)
        return CartoConnectionSettings.from_connection(conn, extra)

    def get_auth(self) -> CartoAuth:
        """The :class:`~carto_provider.auth.CartoAuth` for this connection (built once per hook)."""
        if self._auth is None:
            self._auth = self._build_auth(
                self.settings, self.retry_policy, self.timeout, self.token_retry, self.max_response_bytes
            )
        return self._auth

    get_conn = get_auth

    @staticmethod
    def _build_auth(
        settings: CartoConnectionSettings,
        retry_policy: CartoRetryPolicy,
        timeout: float | tuple[float, float],
        token_retry: CartoRetryPolicy | None = None,
        max_response_bytes: int = DEFAULT_MAX_BODY,
    ) -> CartoAuth:
        """The connection's :class:`CartoAuth` (``token_retry`` None: ``settings.auth.token_retry``)."""
        common: dict[str, Any] = {
            "retry_policy": retry_policy,
            "timeout": timeout,
            "on_secret": _mask,
            "bigquery_api_endpoint": settings.bigquery_api_endpoint,
            "max_response_bytes": max_response_bytes,
        }
        if settings.auth_type == "api_token":
            source = f"connection {settings.conn_id!r}"
            token, url = settings.client_secret or "", settings.api_base_url
            return api_token_auth(token, api_base_url=url, source=source, settings=settings.auth, **common)
        if settings.auth_type == "oauth":
            from carto_provider.auth.login.cached import cached_login_auth
            from carto_provider.auth.login.oauth import OAuthClient

            client = OAuthClient.resolve(auth_url=settings.auth_url, org=settings.org, settings=settings.auth)
            return cached_login_auth(
                client,
                settings.cache_path(OAUTH_CACHE_FILENAME),
                conn_id=settings.conn_id,
                api_base_url=settings.api_base_url,
                token_cache_dir=settings.cache_dir,
                **common,
            )
        credentials = settings.m2m_credentials()
        # Waiters on another process's fetch wait out its worst case, as CartoAuth's own cache does.
        policy = settings.auth.token_policy(token_retry=token_retry)
        cache = settings.m2m_token_cache(credentials, lock_timeout=single_flight_wait(policy, timeout))
        return CartoAuth.from_m2m_credentials(
            credentials, cache=cache, settings=settings.auth, token_retry=policy, **common
        )

    def get_access_token(self, *, min_ttl: float = 0.0) -> str:
        """A valid CARTO access token, masked in task logs (the API access token itself, for a
        connection of ``auth_type`` ``api_token``)."""
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

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated CARTO API call (``path`` relative to the API base URL)."""
        return self.get_auth().request(method, path, **kwargs)

    # ------------------------------------------------------------------ connection test

    def test_connection(self) -> tuple[bool, str]:
        """Obtain a token and list the CARTO connections (an API access token: ``SELECT 1`` on the
        connection's ``carto_connection``, else the LDS quota); never raises, never shows a secret.

        This runs in the Airflow API server (the UI's Test button) or the CLI
        (``airflow connections test``): fast retries, short timeouts, and never an interactive login.
        """
        secrets: list[str] = []
        try:
            settings = self.settings
            secrets += _secrets_of(settings)
            retry = TEST_CONNECTION_RETRY
            auth = self._build_auth(settings, retry, TEST_CONNECTION_TIMEOUT, token_retry=retry)
            token = auth.get_token()
            secrets.append(token.value)
            if settings.auth_type == "api_token":
                ok, message = True, probe_api_token(auth, settings.carto_connection or "carto_dw")
            else:
                ok, message = True, _probe_api(auth, token.expires_at)
        except CredentialsConfigError as exc:
            ok, message = False, f"Connection settings: {exc}"
        except CredentialsError as exc:
            ok, message = False, _auth_failure(exc)
        except CartoAPIError as exc:
            ok, message = False, f"Token obtained, but the CARTO API call failed: {exc}"
        except CartoError as exc:
            ok, message = False, str(exc)
        except Exception as exc:
            ok, message = False, f"Could not test the CARTO connection ({type(exc).__name__}: {exc})"
        for secret in (s for s in secrets if len(s) >= MIN_MASKED_SECRET):
            message = message.replace(secret, "***")
        return ok, message
