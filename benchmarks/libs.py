"""The two libraries compared, used exactly as a task would use them.

Both are given the same ``carto_credentials.json`` and their default cache (carto-auth's
``~/.carto-auth/token_m2m.json``, this package's ``~/.carto-provider/token_m2m.json``, under a ``HOME``
the harness gives each strategy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PROVIDER = "carto_provider"
CARTO_AUTH = "carto_auth"
LIBRARIES = (PROVIDER, CARTO_AUTH)
LABELS = {PROVIDER: "airflow-provider-carto", CARTO_AUTH: "carto-auth 0.2.0"}
#: Each library's default M2M cache file, relative to ``HOME`` (this package never shares carto-auth's).
CACHE_FILES = {PROVIDER: ".carto-provider/token_m2m.json", CARTO_AUTH: ".carto-auth/token_m2m.json"}
#: How carto-auth fails when it reads a cache file another process is rewriting in place.
TORN_READ_ERRORS = frozenset({"JSONDecodeError"})


def library_api(library: str, emulator_url: str) -> tuple[Any, type[BaseException]]:
    """Import ``library`` as a task would: its ``CartoAuth`` and ``CredentialsError`` classes
    (carto-auth's ``https://auth.carto.com`` redirected to ``emulator_url``)."""
    if library == PROVIDER:
        # Every Airflow 3 task process has httpx loaded already (the Task SDK's API client), and
        # httpcore, which httpx imports when that client is built (`python -X importtime -c "import
        # airflow.sdk.api.client"` lists it), so a task pays nothing for this package's HTTP stack;
        # a bare process would pay it after the start instant, since importing
        # carto_provider.auth leaves it to the first request.
        import httpcore  # noqa: F401
        import httpx  # noqa: F401

        from carto_provider.auth.carto_auth import CartoAuth
        from carto_provider.errors import CredentialsError

        return CartoAuth, CredentialsError
    if library == CARTO_AUTH:
        from benchmarks.redirect import redirect_carto_auth

        redirect_carto_auth(emulator_url)
        from carto_auth import CartoAuth as SeedCartoAuth
        from carto_auth.errors import CredentialsError as SeedCredentialsError

        return SeedCartoAuth, SeedCredentialsError
    raise ValueError(f"unknown library {library!r}; expected one of {LIBRARIES}")


def auth_factory(library: str, credentials_path: str, emulator_url: str) -> Callable[[], Any]:
    """Import ``library`` and return a function building its ``CartoAuth`` from the credentials file.

    The import happens here, so a caller can finish importing before a timed start.
    """
    carto_auth_class, _ = library_api(library, emulator_url)
    return lambda: carto_auth_class.from_m2m(credentials_path)
