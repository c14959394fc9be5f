"""``CartoImportTrigger``: the name the import wait had before one trigger served every job kind."""

from __future__ import annotations

from typing import Any

from carto_provider.hooks.jobs import IMPORT
from carto_provider.triggers.base import CartoJobTrigger


class CartoImportTrigger(CartoJobTrigger):
    """:class:`~carto_provider.triggers.base.CartoJobTrigger` for an import.

    Kept so that tasks deferred by an earlier version, whose stored class path names it, resume.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("kind", IMPORT.label)
        super().__init__(**kwargs)
