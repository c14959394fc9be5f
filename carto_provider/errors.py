"""Every exception this package raises on purpose, in one small hierarchy.

::

    CartoError
    ├── ConfigurationError (ValueError)          a setting cannot work: fix the settings, not the server
    │   └── CredentialsConfigError (+ CredentialsError)
    │       └── CredentialsFileError              the M2M credentials file
    │           ├── CredentialsFileNotFoundError (+ FileNotFoundError)
    │           ├── CredentialsFileJSONError     (+ json.JSONDecodeError)
    │           └── CredentialsFieldMissingError (+ AttributeError)
    ├── CredentialsError                          authentication, discovery or DW credentials failed
    │   ├── LoginRequiredError                    no usable interactive login is cached
    │   └── CredentialsAPIError (+ CartoAPIError) discovery or the DW token endpoint failed
    │   └── UnknownHookParameterError (+ TypeError) a hook was given a keyword it does not know
    ├── CartoAPIError                             a CARTO API call failed
    │   ├── BigQueryEndpointError                 the Data Warehouse's BigQuery endpoint failed
    │   └── ResponseTooLargeError                 an answer passed its byte budget (after decoding)
    ├── QueryTooLargeError                        a synchronous query returned too many rows
    ├── CartoJobError                             a SQL job, import or Workflow run failed or was cancelled
    └── CartoJobTimeout                           a job did not finish in the time allowed

The double parents make ``except`` clauses written for ``carto-auth`` (which raises ``CredentialsError``,
``FileNotFoundError``, ``json.JSONDecodeError``, ``AttributeError`` and ``ValueError``) catch the same
failures here. Messages are written for the person who has to fix the problem; none contains a client
secret or a token (server text is passed through :func:`carto_provider.api.untrusted.redact` first).
"""

from __future__ import annotations

import errno
import json
from typing import Any


class CartoError(Exception):
    """Base class of every error this package raises on purpose; ``str()`` is the message alone."""

    def __init__(self, message: str) -> None:
        # Not super().__init__: some subclasses also derive from OSError or JSONDecodeError, whose
        # constructors take other arguments.
        Exception.__init__(self, message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


def _rebuild(cls: type[CartoError], message: str, state: dict[str, Any]) -> CartoError:
    error = cls.__new__(cls)
    CartoError.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigurationError(CartoError, ValueError):
    """A setting (connection field, option, URL, argument) is missing or cannot work."""


class CredentialsError(CartoError):
    """CARTO authentication failed: credentials refused, the auth server unreachable or answering
    something unusable, the API base URL not discoverable, or the Data Warehouse token unusable.

    ``status`` is the HTTP status of the refusal (``None`` for local problems), ``error`` and
    ``error_description`` are the OAuth error fields the server sent back (secrets redacted).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> None:
        CartoError.__init__(self, message)
        self.status = status
        self.error = error
        self.error_description = error_description


class CredentialsConfigError(ConfigurationError, CredentialsError):
    """An authentication setting is missing or invalid (a URL, a connection field, an auth option)."""

    def __init__(self, message: str) -> None:
        CredentialsError.__init__(self, message)


class CredentialsFileError(CredentialsConfigError):
    """The M2M credentials file (``carto_credentials.json``) is missing, unreadable or malformed."""


class CredentialsFileNotFoundError(CredentialsFileError, FileNotFoundError):
    """The credentials file does not exist (``carto-auth`` raises ``FileNotFoundError``)."""

    def __init__(self, message: str, filename: str | None = None) -> None:
        CredentialsFileError.__init__(self, message)
        self.errno = errno.ENOENT
        self.strerror = message
        self.filename = filename


class CredentialsFileJSONError(CredentialsFileError, json.JSONDecodeError):
    """The credentials file is not valid JSON (``carto-auth`` raises ``json.JSONDecodeError``).

    ``doc`` is left empty on purpose: the file's text holds the client secret.
    """

    def __init__(self, message: str, lineno: int = 1, colno: int = 1, pos: int = 0) -> None:
        CredentialsFileError.__init__(self, message)
        self.msg, self.doc, self.pos, self.lineno, self.colno = message, "", pos, lineno, colno


class CredentialsFieldMissingError(CredentialsFileError, AttributeError):
    """A required field is absent from the credentials file (``carto-auth`` raises ``AttributeError``)."""


class LoginRequiredError(CredentialsError):
    """No usable interactive (OAuth) login is cached; run ``carto-provider login``."""


class CartoAPIError(CartoError):
    """A CARTO API call failed.

    ``status`` is the HTTP status (``None`` when the server could not be reached), ``error`` the
    ``error`` field of CARTO's JSON error body, and ``url`` the URL without its query string.
    """

    def __init__(
        self, message: str, *, status: int | None = None, error: str | None = None, url: str | None = None
    ) -> None:
        CartoError.__init__(self, message)
        self.status = status
        self.error = error
        self.url = url


class CredentialsAPIError(CredentialsError, CartoAPIError):
    """A CARTO service needed to authenticate (account discovery, the Data Warehouse token) failed or
    answered something unusable: a :class:`CredentialsError`, as ``carto-auth`` raises, and a
    :class:`CartoAPIError` with the status and URL."""

    def __init__(
        self, message: str, *, status: int | None = None, error: str | None = None, url: str | None = None
    ) -> None:
        CredentialsError.__init__(self, message, status=status, error=error)
        self.url = url


class APITokenRefusedError(CredentialsAPIError):
    """CARTO refused an API access token (HTTP 401 or 403): it was revoked or has expired, or its
    grants (connections and sources), allowed APIs or referers do not cover the call. Never retried:
    asking again with the same token cannot succeed."""


class UnknownHookParameterError(ConfigurationError, TypeError):
    """A hook was given a keyword argument it does not know (a ``TypeError``, as Python would raise)."""


class BigQueryEndpointError(CartoAPIError):
    """The BigQuery endpoint of the CARTO Data Warehouse client could not be reached or did not answer."""


class ResponseTooLargeError(CartoAPIError):
    """An answer passed its byte budget (counted after decoding); reading stopped there."""


class QueryTooLargeError(CartoError):
    """A synchronous query returned more rows than the caller accepts, or hit the SQL API cap."""


class CartoJobError(CartoError):
    """A CARTO SQL job or import ended in failure or was cancelled; ``job`` is its last state
    (a :class:`carto_provider.api.jobs.CartoJob`)."""

    def __init__(self, message: str, *, job: Any) -> None:
        CartoError.__init__(self, message)
        self.job = job


class CartoJobTimeout(CartoError):
    """A job did not finish in the time allowed (it has been cancelled when so asked)."""


__all__ = [
    "APITokenRefusedError",
    "BigQueryEndpointError",
    "CartoAPIError",
    "CartoError",
    "CartoJobError",
    "CartoJobTimeout",
    "ConfigurationError",
    "CredentialsAPIError",
    "CredentialsConfigError",
    "CredentialsError",
    "CredentialsFieldMissingError",
    "CredentialsFileError",
    "CredentialsFileJSONError",
    "CredentialsFileNotFoundError",
    "LoginRequiredError",
    "QueryTooLargeError",
    "ResponseTooLargeError",
    "UnknownHookParameterError",
]
