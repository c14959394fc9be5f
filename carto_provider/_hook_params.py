"""The keyword arguments a CARTO hook accepts beyond its own: connection extras, and the rest checked.

common.sql's operators build a hook with every extra of the connection as a keyword argument
(``BaseSQLOperator.get_hook``), and users add their own through ``hook_params``. A CARTO hook
therefore takes:

* the connection's extra fields (``auth_url``, ``cache_backend``... see
  :data:`~carto_provider.provider_info.CONNECTION_EXTRA_FIELDS`) as overrides of the connection's
  values;
* the parameters its base classes take (``logger_name``; the DB-API hook adds common.sql's);
* any other name only when the connection's extra holds the same value (common.sql copied it from
  there); otherwise the hook refuses it with a clear error when it first reads its connection,
  instead of ``BaseHook``'s ``TypeError``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from carto_provider.errors import UnknownHookParameterError
from carto_provider.provider_info import CONNECTION_EXTRA_FIELDS

#: Extras renamed in 1.0 (old name -> new name), read until 2.0 with a ``DeprecationWarning``. Airflow's
#: secret masker hides the value of any extra whose name contains ``token``, so the old names turned a
#: cache directory, ``local`` and a Redis host into ``***`` in task logs.
DEPRECATED_EXTRAS = {
    "token_cache_dir": "cache_dir",
    "token_cache": "cache_backend",
    "token_cache_redis_url": "cache_redis_url",
}


def renamed_extras(conn_id: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` with the names of :data:`DEPRECATED_EXTRAS` moved to their new names (a new name
    already there wins), warning once per old name found."""
    extra = dict(extra)
    for old, new in DEPRECATED_EXTRAS.items():
        if old not in extra:
            continue
        value = extra.pop(old)
        extra.setdefault(new, value)
        warnings.warn(
            f"Connection {conn_id!r}: the extra {old!r} is deprecated and will stop working in "
            f"airflow-provider-carto 2.0; rename it to {new!r}.",
            DeprecationWarning,
            stacklevel=3,
        )
    return extra


@dataclass
class HookParams:
    """What a hook was given besides its own parameters, sorted out by :func:`split_hook_params`."""

    hook_name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, Any] = field(default_factory=dict)
    accepted: frozenset[str] = frozenset()

    def extra_of(self, conn_id: str, extra: Mapping[str, Any] | None) -> dict[str, Any]:
        """The connection's extra with this hook's overrides applied; refuses unknown parameters that
        did not come from that extra."""
        extra = dict(extra or {})
        stray = sorted(
            name for name, value in self.unknown.items() if name not in extra or extra[name] != value
        )
        if stray:
            known = sorted(set(CONNECTION_EXTRA_FIELDS) | self.accepted)
            raise UnknownHookParameterError(
                f"{self.hook_name} got unknown parameter(s) {', '.join(map(repr, stray))} (from hook_params "
                f"or a direct call), which connection {conn_id!r} does not hold either. It accepts: "
                f"{', '.join(known)}."
            )
        extra.update(renamed_extras(conn_id, self.overrides))
        return extra


def split_hook_params(
    hook_name: str, kwargs: dict[str, Any], base_params: Iterable[str]
) -> tuple[HookParams, dict[str, Any]]:
    """``(params, for_base)``: connection-extra overrides and unknown names kept in ``params``; the
    names in ``base_params`` returned to pass on to the base class."""
    base = frozenset(base_params)
    params = HookParams(hook_name, accepted=base)
    for_base: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name in base:
            for_base[name] = value
        elif name in CONNECTION_EXTRA_FIELDS or name in DEPRECATED_EXTRAS:
            params.overrides[name] = value
        else:
            params.unknown[name] = value
    return params, for_base
