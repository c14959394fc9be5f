"""The :class:`CartoAuth` of a user's cached ``carto-provider login``, for Airflow tasks: never prompts.

Built by the hook for a connection with ``auth_type: oauth`` from values the hook resolved (the
:class:`OAuthClient`, the cache file, the connection's API base URL); nothing here reads the
connection, the environment or Airflow.
"""

from __future__ import annotations

import os
import time
from typing import Any

from carto_provider.auth.carto_auth import CartoAuth
from carto_provider.auth.login.oauth import LoginToken, OAuthClient, login_cache, login_command
from carto_provider.auth.tokens import AccessToken
from carto_provider.errors import LoginRequiredError

#: Tasks wait at most this long for a login being written by another process.
HOOK_LOCK_TIMEOUT = 5.0


def cached_login_auth(
    client: OAuthClient,
    cache_path: str | os.PathLike[str],
    *,
    conn_id: str,
    api_base_url: str | None = None,
    token_cache_dir: str | None = None,
    **common: Any,
) -> CartoAuth:
    """The :class:`CartoAuth` of the login ``client`` cached at ``cache_path``. Opens no socket or
    browser and reads no input: without a usable cached login it raises :class:`LoginRequiredError`
    at once, naming the command to run (``token_cache_dir`` goes into that command).

    ``api_base_url`` (the connection's host) wins over the login's; ``common`` goes to :class:`CartoAuth`.
    """
    cache = login_cache(cache_path, lock_timeout=HOOK_LOCK_TIMEOUT)
    command = login_command(client, token_cache_dir)
    prefix = f"Connection {conn_id!r} uses auth_type 'oauth' (your own CARTO login)"
    suffix = f"Run `{command}` on this machine, then run the task again (tasks never open a browser)."
    token = cache.peek(client.cache_key)
    if token is None or not token.usable(time.time()):
        raise LoginRequiredError(
            f"{prefix}, but no {client.label} valid for more than a few minutes is cached in "
            f"{cache_path}. {suffix}"
        )
    login = token.login if isinstance(token, LoginToken) else None
    api_base_url = api_base_url or (login.api_base_url if login else None)
    if not api_base_url:
        raise LoginRequiredError(
            f"{prefix}, but the cached login in {cache_path} has no API base URL. {suffix}"
        )

    def no_interactive_login() -> AccessToken:
        raise LoginRequiredError(f"{prefix}, and the cached login has expired or is about to. {suffix}")

    return CartoAuth._assemble(
        api_base_url=api_base_url,
        cache=cache,
        cache_key=client.cache_key,
        fetch_token=no_interactive_login,
        settings=client.settings,
        **common,
    )
