"""CARTO authentication without Airflow: the seed's ``CartoAuth`` API on a safe, shared token cache.

>>> from carto_provider.auth import CartoAuth
>>> auth = CartoAuth.from_m2m("./carto_credentials.json")   # doctest: +SKIP
>>> token = auth.get_access_token()                          # doctest: +SKIP
"""

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.config import M2MCredentials
from carto_provider.auth.errors import (
    CartoAPIError,
    CartoError,
    CredentialsError,
    CredentialsFileError,
    LoginRequiredError,
)
from carto_provider.auth.http import RetryPolicy
from carto_provider.auth.tokens import AccessToken

__all__ = [
    "AccessToken",
    "CartoAPIError",
    "CartoAuth",
    "CartoError",
    "CredentialsError",
    "CredentialsFileError",
    "LoginRequiredError",
    "M2MCredentials",
    "RetryPolicy",
]
