"""``CartoImportTrigger``: waits in the triggerer for a CARTO import to end."""

from __future__ import annotations

from carto_provider.hooks.sql_api import CartoJob
from carto_provider.hooks.sql_async import CartoSQLAsyncHook
from carto_provider.triggers.base import CartoJobTrigger


class CartoImportTrigger(CartoJobTrigger):
    """Polls ``GET /v3/imports/{job_id}``; on kill, ``POST /v3/imports/{job_id}/cancel``.

    Arguments: see :class:`~carto_provider.triggers.base.CartoJobTrigger`.
    """

    async def _fetch(self, hook: CartoSQLAsyncHook) -> CartoJob:
        return await hook.aget_import(self.job_id)

    async def _cancel(self, hook: CartoSQLAsyncHook) -> CartoJob:
        return await hook.acancel_import(self.job_id)
