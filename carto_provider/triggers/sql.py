"""``CartoSQLJobTrigger``: waits in the triggerer for a CARTO SQL job (or a Workflow run) to end."""

from __future__ import annotations

from typing import Any

from carto_provider.hooks.sql_api import CARTO_DW, CartoJob
from carto_provider.hooks.sql_async import CartoSQLAsyncHook
from carto_provider.triggers.base import CartoJobTrigger


class CartoSQLJobTrigger(CartoJobTrigger):
    """Polls ``GET /v3/sql/{connection}/job/{job_id}``; on kill, ``DELETE``\\ s the job.

    :param connection: the CARTO connection the job runs on (``carto_dw``, or a connection name
        from CARTO Workspace).
    Other arguments: see :class:`~carto_provider.triggers.base.CartoJobTrigger`.
    """

    def __init__(self, *, connection: str = CARTO_DW, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connection = connection

    def _kwargs(self) -> dict[str, Any]:
        return {"connection": self.connection}

    async def _fetch(self, hook: CartoSQLAsyncHook) -> CartoJob:
        return await hook.aget_job(self.job_id, connection=self.connection)

    async def _cancel(self, hook: CartoSQLAsyncHook) -> CartoJob:
        return await hook.acancel_job(self.job_id, connection=self.connection)
