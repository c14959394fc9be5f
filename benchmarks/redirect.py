"""Point carto-auth 0.2.0 at the emulator, in benchmark task processes only.

carto-auth posts to the literal ``https://auth.carto.com/oauth/token`` (``carto_auth.utils
.get_m2m_token_info``) through ``requests.post``, which builds a new ``requests.Session`` per call.
:func:`redirect_carto_auth` makes every new session send requests for that host to the emulator
instead, through a transport adapter mounted on the host's prefix. Nothing else changes: carto-auth's
own code runs as published (its cache, its timing, its lack of locking). carto_provider never goes
through this module; it is configured with the emulator's URL like any deployment.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

CARTO_AUTH_HOST = "https://auth.carto.com"


class RedirectAdapter(HTTPAdapter):
    """Sends ``https://auth.carto.com/...`` to ``target/...`` (the emulator's base URL)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Rewrite the URL's scheme and host, then send as usual."""
        url = request.url or ""
        if url.startswith(CARTO_AUTH_HOST):
            request.url = self.target + url[len(CARTO_AUTH_HOST) :]
        return super().send(request, *args, **kwargs)


def redirect_carto_auth(target: str) -> None:
    """Mount :class:`RedirectAdapter` on every ``requests.Session`` created from now on."""
    original_init = requests.Session.__init__

    def init(self: requests.Session, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.mount(CARTO_AUTH_HOST + "/", RedirectAdapter(target))

    requests.Session.__init__ = init  # type: ignore[method-assign]
