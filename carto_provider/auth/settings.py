"""The settings of the auth flow, resolved once at the edge: :class:`AuthSettings`.

The environment variables below are read in one place, :meth:`AuthSettings.from_environment`, called
by the edges: the ``CartoAuth`` constructors, ``M2MCredentials.from_file``/``from_mapping``,
``OAuthClient.resolve``, the hook's ``CartoConnectionSettings.from_connection`` and the CLI. Everything
below them (token requests, discovery, the login flow, the cache) takes the resolved values as
arguments, so a variable set after an object was built changes nothing in it, and a test or a caller
can hand any settings in without touching ``os.environ``. No Airflow, no I/O.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from carto_provider.auth.cache_file import DEFAULT_CACHE_DIR
from carto_provider.auth.urls import check_url, is_loopback_host
from carto_provider.retry import TOKEN_RETRY, RetryPolicy

DEFAULT_AUTH_URL = "https://auth.carto.com"
DEFAULT_ACCOUNTS_URL = "https://accounts.app.carto.com/accounts"
#: CARTO's public PKCE client (the one carto-auth uses).
CARTO_PUBLIC_CLIENT_ID = "0dxb8HR3ATXCxJiPOJVHsLoHoAtbRX6u"
M2M_CACHE_FILENAME = "token_m2m.json"
OAUTH_CACHE_FILENAME = "token_oauth.json"

AUTH_URL_ENV = "CARTO_AUTH_URL"
ACCOUNTS_URL_ENV = "CARTO_ACCOUNTS_URL"
#: Overrides the client id for logins and for connections with ``auth_type: oauth`` alike.
CLIENT_ID_ENV = "CARTO_OAUTH_CLIENT_ID"
#: Comma-separated host names (exact, case-insensitive) allowed over plain http:// besides loopback.
#: For an emulator reached by name on a private network, e.g. ``carto-emulator`` in docker-compose.
INSECURE_HTTP_HOSTS_ENV = "CARTO_ALLOW_INSECURE_HTTP_HOSTS"


def default_cache_path(filename: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """``<directory>/<filename>``; without a directory, ``~/.carto-provider/<filename>`` (not
    carto-auth's ``~/.carto-auth``, so the two libraries never share or overwrite a file)."""
    return Path(directory or DEFAULT_CACHE_DIR).expanduser() / filename


def host_list(text: str) -> frozenset[str]:
    """The host names of a comma-separated list (lower case, blanks dropped)."""
    return frozenset(h.strip().lower() for h in text.split(",")) - {""}


def _without_endpoint(url: str) -> str:
    """A base URL from a full token or authorize endpoint URL, which users sometimes give."""
    for suffix in ("/oauth/token", "/authorize"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


@dataclass(frozen=True)
class AuthSettings:
    """Where CARTO's auth services are and how hard to try them, checked when built.

    ``auth_url`` is the OAuth server used when a credentials file, connection or argument names none;
    ``accounts_url`` the accounts service of discovery (None: ``<auth URL>/accounts`` for a loopback
    auth URL, i.e. the emulator, else CARTO's); ``insecure_http_hosts`` the hosts besides loopback
    allowed over plain http; ``oauth_client_id`` the client of interactive logins; ``token_retry``
    the retry policy of token requests when the caller chose none (a task cannot do anything without
    a token, so it waits out a short auth-server outage).
    """

    auth_url: str = DEFAULT_AUTH_URL
    accounts_url: str | None = None
    insecure_http_hosts: frozenset[str] = field(default_factory=frozenset)
    oauth_client_id: str = CARTO_PUBLIC_CLIENT_ID
    token_retry: RetryPolicy = TOKEN_RETRY

    def __post_init__(self) -> None:
        given = self.insecure_http_hosts  # a comma-separated string is accepted too
        hosts = host_list(given if isinstance(given, str) else ",".join(given))
        object.__setattr__(self, "insecure_http_hosts", hosts)
        object.__setattr__(self, "auth_url", self.resolve_auth_url(self.auth_url))
        if self.accounts_url is not None:
            object.__setattr__(
                self, "accounts_url", self.check_base_url(self.accounts_url, what="accounts URL")
            )
        client_id = (self.oauth_client_id or "").strip()
        object.__setattr__(self, "oauth_client_id", client_id or CARTO_PUBLIC_CLIENT_ID)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, **given: Any) -> AuthSettings:
        """The settings the environment asks for, over the defaults; ``given`` (field names) wins over both.

        The one place the package reads ``$CARTO_AUTH_URL``, ``$CARTO_ACCOUNTS_URL``,
        ``$CARTO_OAUTH_CLIENT_ID`` and ``$CARTO_ALLOW_INSECURE_HTTP_HOSTS`` (``environ``: instead of
        ``os.environ``).
        """
        environ = os.environ if environ is None else environ
        hosts = given.get("insecure_http_hosts", host_list(environ.get(INSECURE_HTTP_HOSTS_ENV, "")))
        values: dict[str, Any] = {"insecure_http_hosts": hosts}
        for name, variable, what in (
            ("auth_url", AUTH_URL_ENV, "auth URL"),
            ("accounts_url", ACCOUNTS_URL_ENV, "accounts URL"),
        ):
            chosen = environ.get(variable)
            if chosen and name not in given:
                values[name] = check_url(chosen, what=f"{what} (${variable})", insecure_http_hosts=hosts)
        if environ.get(CLIENT_ID_ENV, "").strip():
            values["oauth_client_id"] = environ[CLIENT_ID_ENV]
        return cls(**{**values, **given})

    def token_policy(
        self, *, token_retry: RetryPolicy | None = None, chosen: RetryPolicy | None = None
    ) -> RetryPolicy:
        """The retry policy of a token request: ``token_retry``, else ``chosen`` (the policy a caller
        chose for all its calls), else :attr:`token_retry`. The one place that picks it."""
        return token_retry or chosen or self.token_retry

    def check_base_url(self, url: str, *, what: str = "API base URL") -> str:
        """``url`` checked (:func:`~carto_provider.auth.urls.check_url`, allowing plain http for
        :attr:`insecure_http_hosts`), without a trailing slash."""
        return check_url(url, what=what, insecure_http_hosts=self.insecure_http_hosts)

    def resolve_auth_url(self, explicit: str | None = None) -> str:
        """The OAuth server's base URL: ``explicit``, else :attr:`auth_url`. A full token or authorize
        endpoint URL (``.../oauth/token``) is accepted too and trimmed to its base."""
        return _without_endpoint(self.check_base_url(explicit or self.auth_url, what="auth URL"))

    def accounts_url_for(self, auth_url: str) -> str:
        """Where discovery asks for the user's account after a login at ``auth_url``."""
        if self.accounts_url:
            return self.accounts_url
        if is_loopback_host(urlsplit(auth_url).hostname or ""):
            return f"{auth_url}/accounts"
        return DEFAULT_ACCOUNTS_URL

    def insecure_http_allowed(self, host: str) -> bool:
        """True when ``http://`` may be used for ``host``: loopback, or listed."""
        return is_loopback_host(host) or host.strip("[]").lower() in self.insecure_http_hosts
