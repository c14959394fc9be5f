"""CARTO authentication without Airflow: ``carto-auth``'s ``CartoAuth`` API on a safe, shared token cache.

>>> from carto_provider.auth import CartoAuth
>>> auth = CartoAuth.from_m2m("./carto_credentials.json")   # doctest: +SKIP
>>> token = auth.get_access_token()                          # doctest: +SKIP
"""

from carto_provider import errors as _errors
from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.config import M2MCredentials
from carto_provider.auth.http import RetryPolicy
from carto_provider.auth.tokens import AccessToken
from carto_provider.errors import *  # noqa: F403  (every error class, importable from here too)

__all__ = ["AccessToken", "CartoAuth", "M2MCredentials", "RetryPolicy", *_errors.__all__]
