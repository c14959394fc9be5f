"""CARTO authentication without Airflow: ``carto-auth``'s ``CartoAuth`` API on a safe, shared token cache.

Its errors are in :mod:`carto_provider.errors`; retry policies are
:class:`carto_provider.api.retry.CartoRetryPolicy`.

>>> from carto_provider.auth import CartoAuth
>>> auth = CartoAuth.from_m2m("./carto_credentials.json")   # doctest: +SKIP
>>> token = auth.get_access_token()                          # doctest: +SKIP
"""

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.settings import M2MCredentials
from carto_provider.auth.tokens import AccessToken

__all__ = ["AccessToken", "CartoAuth", "M2MCredentials"]
