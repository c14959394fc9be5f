"""Interactive OAuth (PKCE) login for local development. (Filled in by the OAuth login work.)"""

from __future__ import annotations

from typing import Any

from carto_provider.auth.errors import LoginRequiredError


def cached_login_auth(settings: Any, **kwargs: Any) -> Any:
    """The CartoAuth of the user's cached ``carto-provider login``; never prompts."""
    raise LoginRequiredError(
        f"Connection {settings.conn_id!r} uses auth_type 'oauth', but no CARTO login is cached. "
        "Run `carto-provider login` on this machine first."
    )
