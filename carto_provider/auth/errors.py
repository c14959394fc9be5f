"""Exceptions raised by :mod:`carto_provider.auth`.

Every message is written for the person who has to fix the problem, and none of them ever contains a
client secret or a token: callers build them from server error codes, field names and URLs only.
"""

from __future__ import annotations


class CartoError(Exception):
    """Base class of every error this package raises on purpose."""


class CredentialsError(CartoError):
    """CARTO credentials are missing, malformed or were refused by the auth server.

    ``status`` is the HTTP status of the refusal (``None`` for local problems), ``error`` and
    ``error_description`` are the OAuth error fields the server sent back, when it sent any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.error_description = error_description


class CredentialsFileError(CredentialsError, ValueError):
    """A credentials file or connection field is missing, empty or malformed."""


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
        super().__init__(message)
        self.status = status
        self.error = error
        self.url = url
