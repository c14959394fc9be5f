"""Where CARTO lives and who we are: base URLs and M2M client credentials.

A credentials file is the seed's ``carto_credentials.json``::

    {"api_base_url": "https://gcp-us-east1.api.carto.com", "client_id": "...", "client_secret": "..."}

with an optional ``auth_url`` (the OAuth server's base URL).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carto_provider.auth.settings import AUTH_URL_ENV as AUTH_URL_ENV
from carto_provider.auth.settings import DEFAULT_AUTH_URL, AuthSettings
from carto_provider.auth.settings import INSECURE_HTTP_HOSTS_ENV as INSECURE_HTTP_HOSTS_ENV
from carto_provider.errors import (
    CredentialsConfigError,
    CredentialsFieldMissingError,
    CredentialsFileError,
    CredentialsFileJSONError,
    CredentialsFileNotFoundError,
)

AUDIENCE = "carto-cloud-native-api"
REQUIRED_M2M_FIELDS = ("api_base_url", "client_id", "client_secret")

# The four functions below answer from the environment, for callers that hold no AuthSettings; the
# package's own code resolves AuthSettings once at its edges and passes it down instead.


def insecure_http_hosts(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The host names ``$CARTO_ALLOW_INSECURE_HTTP_HOSTS`` allows over plain http (exact names, no
    wildcards; the deliberate escape hatch for an emulator on a container network)."""
    return AuthSettings.from_environment(environ).insecure_http_hosts


def insecure_http_allowed(host: str) -> bool:
    """True when ``http://`` may be used for ``host``: loopback, or listed in
    ``$CARTO_ALLOW_INSECURE_HTTP_HOSTS``."""
    return AuthSettings.from_environment().insecure_http_allowed(host)


def normalize_base_url(url: str, *, what: str = "API base URL") -> str:
    """Validate a CARTO base URL (:func:`~carto_provider.auth.urls.check_url`, with the hosts of
    ``$CARTO_ALLOW_INSECURE_HTTP_HOSTS``) and return it without a trailing slash."""
    return AuthSettings.from_environment().check_base_url(url, what=what)


def resolve_auth_url(explicit: str | None = None) -> str:
    """The OAuth server's base URL: ``explicit``, else ``$CARTO_AUTH_URL``, else ``https://auth.carto.com``.

    A full token-endpoint URL (``.../oauth/token``) is accepted too and trimmed to its base.
    """
    return AuthSettings.from_environment().resolve_auth_url(explicit)


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
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        source: str,
        error: type[CredentialsConfigError] = CredentialsConfigError,
        auth_url: str | None = None,
        settings: AuthSettings | None = None,
    ) -> M2MCredentials:
        """Build credentials from a mapping, naming ``source`` (a file or connection) in every error.

        ``error`` is the class raised (:class:`CredentialsFileError` for a file); ``auth_url`` is the
        default when the mapping has none, else ``settings.auth_url`` (``settings``: the URL rules
        and defaults; without it, :meth:`AuthSettings.from_environment`).
        """
        settings = settings or AuthSettings.from_environment()
        for name in REQUIRED_M2M_FIELDS:
            value = data.get(name)
            if value is None:
                missing = CredentialsFieldMissingError if issubclass(error, CredentialsFileError) else error
                raise missing(f"{source} is missing the required field {name!r}.")
            if not isinstance(value, str) or not value.strip():
                raise error(f"{source} has an empty or non-text value for {name!r}.")
        explicit_auth_url = data.get("auth_url")
        if explicit_auth_url is not None and not isinstance(explicit_auth_url, str):
            raise error(f"{source} has a non-text value for 'auth_url'.")
        try:
            api_base_url = settings.check_base_url(data["api_base_url"])
            resolved_auth_url = settings.resolve_auth_url(explicit_auth_url or auth_url or None)
        except CredentialsConfigError as exc:
            raise error(f"{source}: {exc}") from None
        return cls(
            api_base_url=api_base_url,
            client_id=data["client_id"].strip(),
            client_secret=data["client_secret"].strip(),
            auth_url=resolved_auth_url,
        )

    @classmethod
    def from_file(
        cls,
        filepath: str | os.PathLike[str],
        *,
        auth_url: str | None = None,
        settings: AuthSettings | None = None,
    ) -> M2MCredentials:
        """Read a ``carto_credentials.json`` file (``auth_url``, ``settings``: as in :meth:`from_mapping`)."""
        path = Path(filepath).expanduser()
        source = f"The CARTO credentials file {str(path)!r}"
        text = _read_credentials_text(path, source)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CredentialsFileJSONError(
                f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}); expected an object "
                "with api_base_url, client_id and client_secret.",
                lineno=exc.lineno,
                colno=exc.colno,
                pos=exc.pos,
            ) from None
        except RecursionError:
            raise CredentialsFileJSONError(f"{source} is not a credentials file (too deep).") from None
        if not isinstance(data, dict):
            raise CredentialsFileError(f"{source} must contain a JSON object, not {type(data).__name__}.")
        return cls.from_mapping(
            data, source=source, error=CredentialsFileError, auth_url=auth_url, settings=settings
        )


#: A credentials file is a few hundred bytes.
MAX_CREDENTIALS_FILE_BYTES = 64 * 1024


def _read_credentials_text(path: Path, source: str) -> str:
    """The file's text; never blocks on a FIFO or device, never reads more than 64 KiB."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise CredentialsFileNotFoundError(f"{source} does not exist.", str(path)) from None
    except OSError as exc:
        raise CredentialsFileError(f"{source} cannot be read ({exc.strerror}).") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise CredentialsFileError(f"{source} is not a regular file.")
        raw = handle.read(MAX_CREDENTIALS_FILE_BYTES + 1)
    if len(raw) > MAX_CREDENTIALS_FILE_BYTES:
        raise CredentialsFileError(f"{source} is larger than a credentials file can be (64 KiB).")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialsFileJSONError(f"{source} is not valid JSON (not UTF-8 text).") from None
