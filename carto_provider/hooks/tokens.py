"""``CartoTokensHook``: create, list, revoke and rotate CARTO API access tokens (``/v3/tokens``).

The Tokens API takes an OAuth access token only (an ``m2m`` or ``oauth`` connection), never an API
access token. Every token this hook creates or reads is handed to Airflow's ``mask_secret`` first, so
it shows as ``***`` in task logs; a failed call about one token has the token replaced by ``***`` in
its error (CARTO puts the token in the URL path).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

from carto_provider.api.tokens import APIToken, GrantLike, token_body, token_path, tokens_of
from carto_provider.errors import CartoAPIError
from carto_provider.hooks.api import CartoAPIHook
from carto_provider.hooks.carto import _mask

log = logging.getLogger(__name__)


class CartoTokensHook(CartoAPIHook):
    """CARTO's Tokens API over a ``carto`` connection (``m2m`` or ``oauth``)."""

    def create_token(
        self,
        grants: Iterable[GrantLike],
        allowed_apis: Iterable[str] = ("sql",),
        *,
        referers: Iterable[str] = (),
        expiration: dt.datetime | dt.timedelta | str | None = None,
    ) -> APIToken:
        """Create an API access token (``POST /v3/tokens``), sent once: a token created twice is
        harmless but the first would be lost. ``grants``: ``(connection, source)`` pairs or
        ``{"connection_name", "source"}``; ``allowed_apis``: ``sql``, ``maps``, ``imports``, ``lds``."""
        body = token_body(grants, allowed_apis, referers=referers, expiration=expiration)
        token = self._masked(APIToken.from_response(self._create(token_path(), body)))
        log.info(
            "Created CARTO API access token %s (APIs %s)", token.token_id or "(no id)", token.allowed_apis
        )
        return token

    def list_tokens(self) -> list[APIToken]:
        """The API access tokens of these credentials (``GET /v3/tokens``)."""
        return [self._masked(t) for t in tokens_of(self._call("GET", token_path()))]

    def get_token_info(self, token: str) -> APIToken:
        """One token as CARTO describes it (``GET /v3/tokens/{token}``)."""
        _mask(token)
        return self._masked(APIToken.from_response(self._about(token, "GET")))

    def revoke_token(self, token: str) -> None:
        """Delete an API access token (``DELETE /v3/tokens/{token}``): CARTO refuses it from then on.
        A token already gone (404) counts as revoked."""
        _mask(token)
        try:
            self._about(token, "DELETE")
        except CartoAPIError as exc:
            if exc.status != 404:
                raise
            log.info("The CARTO API access token to revoke was already gone (404)")
            return
        log.info("Revoked a CARTO API access token")

    def rotate_token(
        self,
        old_token: str,
        grants: Iterable[GrantLike],
        allowed_apis: Iterable[str] = ("sql",),
        *,
        referers: Iterable[str] = (),
        expiration: dt.datetime | dt.timedelta | str | None = None,
        store: Callable[[APIToken], None] | None = None,
    ) -> APIToken:
        """Create the new token, hand it to ``store`` (e.g. write it to an Airflow Variable), then
        revoke ``old_token``; CARTO sets expiry at creation only, so rotation is create + delete
        (CARTO docs). If the revocation fails, the new token is stored already and the error says so."""
        new = self.create_token(grants, allowed_apis, referers=referers, expiration=expiration)
        if store is not None:
            store(new)
        try:
            self.revoke_token(old_token)
        except CartoAPIError as exc:
            raise CartoAPIError(
                f"The new CARTO API access token {new.token_id or ''} was created"
                f"{' and stored' if store else ''}, but revoking the old one failed: {exc}",
                status=exc.status,
                error=exc.error,
                url=exc.url,
            ) from None
        return new

    def _about(self, token: str, method: str) -> Any:
        try:
            return self._call(method, token_path(token))
        except CartoAPIError as exc:
            quoted = token_path(token).rsplit("/", 1)[-1]
            message = str(exc).replace(token, "***").replace(quoted, "***")
            url = (exc.url or "").replace(quoted, "***")
            raise CartoAPIError(message, status=exc.status, error=exc.error, url=url) from None

    @staticmethod
    def _masked(token: APIToken) -> APIToken:
        _mask(token.token)
        return token
