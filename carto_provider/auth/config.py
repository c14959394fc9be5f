"""Where CARTO lives and who we are: base URLs and M2M client credentials.

A credentials file is the seed's ``carto_credentials.json``::

    {"api_base_url": "https://gcp-us-east1.api.carto.com", "client_id": "...", "client_secret": "..."}

with an optional ``auth_url`` (the OAuth server's base URL).
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from carto_provider.auth.errors import CredentialsFileError

DEFAULT_AUTH_URL = "https://auth.carto.com"
AUTH_URL_ENV = "CARTO_AUTH_URL"
#: Comma-separated host names (exact, case-insensitive) allowed over plain http:// besides loopback.
#: For an emulator reached by name on a private network, e.g. ``carto-emulator`` in docker-compose.
INSECURE_HTTP_HOSTS_ENV = "CARTO_ALLOW_INSECURE_HTTP_HOSTS"
AUDIENCE = "carto-cloud-native-api"
REQUIRED_M2M_FIELDS = ("api_base_url", "client_id", "client_secret")


def is_loopback_host(host: str) -> bool:
    """Return True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_http_allowed(host: str) -> bool:
    """True when ``http://`` may be used for ``host``: loopback, or listed in
    ``$CARTO_ALLOW_INSECURE_HTTP_HOSTS`` (exact names, no wildcards; the deliberate escape hatch for
    an emulator on a container network)."""
    allowed = {h.strip().lower() for h in os.environ.get(INSECURE_HTTP_HOSTS_ENV, "").split(",")}
    return is_loopback_host(host) or host.strip("[]").lower() in allowed - {""}


def normalize_base_url(url: str, *, what: str = "API base URL") -> str:
    """Validate a CARTO base URL and return it without a trailing slash.

    The scheme is optional (``https://`` is assumed). ``http://`` is accepted only for loopback hosts,
    such as the emulator, so that a typo cannot send a bearer token over the network in clear text,
    and for hosts named in ``$CARTO_ALLOW_INSECURE_HTTP_HOSTS`` (see :func:`insecure_http_allowed`).
    """
    text = (url or "").strip()
    if not text:
        raise CredentialsFileError(f"The {what} is empty; expected e.g. https://gcp-us-east1.api.carto.com")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise CredentialsFileError(f"The {what} {_shown(url)} is not an http(s) URL with a host name.")
    if parts.scheme == "http" and not insecure_http_allowed(parts.hostname):
        raise CredentialsFileError(
            f"The {what} {_shown(url)} uses http:// for the non-loopback host {parts.hostname!r}; "
            "use https:// (plain http is only accepted for localhost, e.g. the CARTO emulator, "
            f"and for hosts listed in ${INSECURE_HTTP_HOSTS_ENV})."
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise CredentialsFileError(
            f"The {what} for host {parts.hostname!r} must not carry a query, fragment or user info."
        )
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def _shown(url: str) -> str:
    """Quote a URL for an error message, without any user info or query it may carry."""
    parts = urlsplit(url.strip() if "://" in url else "https://" + url.strip())
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return repr(f"{parts.scheme}://{host}{port}{parts.path}" if "://" in url else f"{host}{port}{parts.path}")


def resolve_auth_url(explicit: str | None = None) -> str:
    """The OAuth server's base URL: ``explicit``, else ``$CARTO_AUTH_URL``, else ``https://auth.carto.com``.

    A full token-endpoint URL (``.../oauth/token``) is accepted too and trimmed to its base.
    """
    chosen = explicit or os.environ.get(AUTH_URL_ENV) or DEFAULT_AUTH_URL
    url = normalize_base_url(chosen, what="auth URL")
    for suffix in ("/oauth/token", "/authorize"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url


@dataclass(frozen=True)
class M2MCredentials:
    """Machine-to-machine (client-credentials) settings for one CARTO M2M client."""

    api_base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    auth_url: str = DEFAULT_AUTH_URL

    def __repr__(self) -> str:
        return (
            f"M2MCredentials(api_base_url={self.api_base_url!r}, client_id={self.client_id!r}, "
            f"client_secret='***', auth_url={self.auth_url!r})"
        )

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint."""
        return f"{self.auth_url}/oauth/token"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str) -> M2MCredentials:
        """Build credentials from a mapping, naming ``source`` (a file or connection) in every error."""
        for name in REQUIRED_M2M_FIELDS:
            value = data.get(name)
            if value is None:
                raise CredentialsFileError(f"{source} is missing the required field {name!r}.")
            if not isinstance(value, str) or not value.strip():
                raise CredentialsFileError(f"{source} has an empty or non-text value for {name!r}.")
        auth_url = data.get("auth_url")
        if auth_url is not None and not isinstance(auth_url, str):
            raise CredentialsFileError(f"{source} has a non-text value for 'auth_url'.")
        try:
            api_base_url = normalize_base_url(data["api_base_url"])
            resolved_auth_url = resolve_auth_url(auth_url or None)
        except CredentialsFileError as exc:
            raise CredentialsFileError(f"{source}: {exc}") from None
        return cls(
            api_base_url=api_base_url,
            client_id=data["client_id"].strip(),
            client_secret=data["client_secret"].strip(),
            auth_url=resolved_auth_url,
        )

    @classmethod
    def from_file(cls, filepath: str | os.PathLike[str]) -> M2MCredentials:
        """Read a ``carto_credentials.json`` file."""
        path = Path(filepath).expanduser()
        source = f"The CARTO credentials file {str(path)!r}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CredentialsFileError(f"{source} does not exist.") from None
        except OSError as exc:
            raise CredentialsFileError(f"{source} cannot be read ({exc.strerror}).") from None
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CredentialsFileError(
                f"{source} is not valid JSON; expected an object with "
                "api_base_url, client_id and client_secret."
            ) from None
        if not isinstance(data, dict):
            raise CredentialsFileError(f"{source} must contain a JSON object, not {type(data).__name__}.")
        return cls.from_mapping(data, source=source)
