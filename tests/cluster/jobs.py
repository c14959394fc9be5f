"""What the emulator knows about the CARTO jobs of one DAG run (the cluster DAGs mark each job's SQL
with ``<run_id>/<task_id>``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from carto_provider.testing.emulator import CartoEmulator
from carto_provider.testing.routes.sql import sql_api


def jobs_per_task(carto: CartoEmulator, run_id: str) -> Counter[str]:
    """How many SQL jobs each task of the run started, by task id."""
    marked = [job.fields["query"] for job in sql_api(carto.state).jobs.newest_first()]
    return Counter(q.split(f"{run_id}/", 1)[1].split("'", 1)[0] for q in marked if f"'{run_id}/" in q)


@contextmanager
def sql_jobs_taking(carto: CartoEmulator, seconds: float) -> Iterator[None]:
    """SQL jobs started meanwhile run for ``seconds`` (the emulator's default is 1 s)."""
    settings = sql_api(carto.state).settings
    before, settings.job_duration = settings.job_duration, seconds
    try:
        yield
    finally:
        settings.job_duration = before
