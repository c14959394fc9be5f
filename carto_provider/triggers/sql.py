"""``CartoSQLJobTrigger``: the name the SQL-job wait had before one trigger served every job kind."""

from __future__ import annotations

from typing import Any

from carto_provider.hooks.jobs import SQL_JOB
from carto_provider.hooks.sql_api import CARTO_DW
from carto_provider.triggers.base import CartoJobTrigger


class CartoSQLJobTrigger(CartoJobTrigger):
    """:class:`~carto_provider.triggers.base.CartoJobTrigger` for a SQL job (or a Workflow run).

    Kept so that tasks deferred by an earlier version, whose stored class path names it, resume.
    """

    def __init__(self, *, connection: str | None = CARTO_DW, **kwargs: Any) -> None:
        kwargs.setdefault("kind", SQL_JOB.label)
        super().__init__(connection=connection, **kwargs)
