"""Operators for CARTO API access tokens: create, rotate, revoke (``/v3/tokens``, OAuth connections).

A new token is masked in task logs and never returned to XCom unless ``do_xcom_push_token=True``;
the XCom is its :meth:`~carto_provider.api.tokens.APIToken.summary` (id, grants, APIs, expiry). Where
it goes instead is an Airflow Variable the user names (``variable_key``): Airflow masks Variables
whose key contains ``token``, and a later task reads it with ``{{ var.value.<key> }}`` or
``Variable.get``. Airflow 3 tasks cannot write Connections (the Task SDK has no such call), so a
Connection that should hold the token is defined with a secrets backend or environment variable
that reads the same secret (see ``docs/tokens.md``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from carto_provider.api.tokens import APIToken, GrantLike
from carto_provider.hooks.tokens import CartoTokensHook

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


def _set_variable(key: str, value: str) -> None:
    from airflow.providers.common.compat.sdk import Variable

    Variable.set(key, value)


def _get_variable(key: str) -> str:
    from airflow.providers.common.compat.sdk import Variable

    return str(Variable.get(key))


class _TokenOperator(BaseOperator):
    """What the token operators share: the connection, the hook, where the token is kept."""

    ui_color = "#3ab6e0"

    def __init__(
        self,
        *,
        carto_conn_id: str = CartoTokensHook.default_conn_name,
        variable_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.carto_conn_id = carto_conn_id
        self.variable_key = variable_key

    def get_hook(self) -> CartoTokensHook:
        """A Tokens API hook on this task's connection."""
        return CartoTokensHook(self.carto_conn_id)

    def _keep(self, token: APIToken) -> None:
        if self.variable_key:
            _set_variable(self.variable_key, token.token)
            self.log.info("Stored the CARTO API access token in the Airflow Variable %r", self.variable_key)


class CartoCreateTokenOperator(_TokenOperator):
    """Create a CARTO API access token with grants, e.g. one allowed to use LDS for an Analytics
    Toolbox geocode.

    :param grants: ``(connection, source)`` pairs or ``{"connection_name", "source"}``; a source is a
        table, ``project.dataset.*``, a SQL query, or ``*``. Templated.
    :param allowed_apis: some of ``sql``, ``maps``, ``imports``, ``lds``.
    :param referers: domains the token is limited to (none: any).
    :param expiration: when it expires (a ``datetime`` with time zone, a ``timedelta`` from now, or
        ISO 8601 text); none: never (CARTO docs).
    :param variable_key: an Airflow Variable to store the new token in.
    :param do_xcom_push_token: also return the token itself (XCom is readable by every DAG author).
    """

    template_fields: Sequence[str] = ("grants", "variable_key")

    def __init__(
        self,
        *,
        grants: Iterable[GrantLike],
        allowed_apis: Iterable[str] = ("sql",),
        referers: Iterable[str] = (),
        expiration: dt.datetime | dt.timedelta | str | None = None,
        do_xcom_push_token: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.grants, self.allowed_apis, self.referers = grants, tuple(allowed_apis), tuple(referers)
        self.expiration = expiration
        self.do_xcom_push_token = do_xcom_push_token

    def execute(self, context: Context) -> dict[str, Any]:
        token = self.get_hook().create_token(
            self.grants, self.allowed_apis, referers=self.referers, expiration=self.expiration
        )
        self._keep(token)
        return token.summary() | ({"token": token.token} if self.do_xcom_push_token else {})


class CartoRotateTokenOperator(CartoCreateTokenOperator):
    """Replace the API access token kept in ``variable_key``: create the new one, store it there,
    then revoke the old one (CARTO sets expiry only at creation, so rotation is create + delete)."""

    def __init__(self, *, variable_key: str, **kwargs: Any) -> None:
        super().__init__(variable_key=variable_key, **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        old = _get_variable(str(self.variable_key))
        token = self.get_hook().rotate_token(
            old,
            self.grants,
            self.allowed_apis,
            referers=self.referers,
            expiration=self.expiration,
            store=self._keep,
        )
        return token.summary() | ({"token": token.token} if self.do_xcom_push_token else {})


class CartoRevokeTokenOperator(_TokenOperator):
    """Revoke the API access token kept in the Airflow Variable ``variable_key`` (and delete the
    Variable with ``delete_variable``); a token already gone counts as revoked."""

    template_fields: Sequence[str] = ("variable_key",)

    def __init__(self, *, variable_key: str, delete_variable: bool = False, **kwargs: Any) -> None:
        super().__init__(variable_key=variable_key, **kwargs)
        self.delete_variable = delete_variable

    def execute(self, context: Context) -> None:
        self.get_hook().revoke_token(_get_variable(str(self.variable_key)))
        if self.delete_variable:
            from airflow.providers.common.compat.sdk import Variable

            Variable.delete(str(self.variable_key))
