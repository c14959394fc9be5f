"""CARTO authentication without Airflow: ``carto-auth``'s ``CartoAuth`` API on a safe, shared token cache.

>>> from carto_provider.auth import CartoAuth
>>> auth = CartoAuth.from_m2m("./carto_credentials.json")   # doctest: +SKIP
>>> token = auth.get_access_token()                          # doctest: +SKIP
"""

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.config import M2MCredentials
from carto_provider.auth.http import RetryPolicy
from carto_provider.auth.tokens import AccessToken
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
    "AccessToken",
    "CartoAPIError",
    "CartoAuth",
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
    "M2MCredentials",
    "RetryPolicy",
]
