"""The errors of :mod:`carto_provider.auth`, kept importable from here: they live in
:mod:`carto_provider.errors`, the one errors module of the package."""

from carto_provider.errors import (
    CartoAPIError,
    CartoError,
    ConfigurationError,
    CredentialsAPIError,
    CredentialsConfigError,
    CredentialsError,
    CredentialsFieldMissingError,
    CredentialsFileError,
    CredentialsFileJSONError,
    CredentialsFileNotFoundError,
    LoginRequiredError,
)

__all__ = [
    "CartoAPIError",
    "CartoError",
    "ConfigurationError",
    "CredentialsAPIError",
    "CredentialsConfigError",
    "CredentialsError",
    "CredentialsFieldMissingError",
    "CredentialsFileError",
    "CredentialsFileJSONError",
    "CredentialsFileNotFoundError",
    "LoginRequiredError",
]
