"""pytest fixtures for testing DAGs against the CARTO emulator (opt-in, needs the ``emulator`` extra).

Enable them with ``pytest -p carto_provider.testing.pytest_plugin`` or, in a ``conftest.py``,
``pytest_plugins = ["carto_provider.testing.pytest_plugin"]``:

* ``carto_emulator``: a running :class:`~carto_provider.testing.CartoEmulator`, fresh per test.
* ``carto_connection``: sets ``AIRFLOW_CONN_CARTO_DEFAULT`` to the emulator (CARTO APIs and its
  BigQuery endpoint), with a private token cache directory, and returns the connection id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from carto_provider.testing.emulator import CartoEmulator


@pytest.fixture
def carto_emulator() -> Iterator[CartoEmulator]:
    """A CARTO emulator on a free loopback port, stopped after the test."""
    from carto_provider.testing.extra import require_emulator_extra

    require_emulator_extra("the carto_emulator fixture")
    from carto_provider.testing.emulator import CartoEmulator

    with CartoEmulator() as emulator:
        yield emulator


@pytest.fixture
def carto_connection(carto_emulator: CartoEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """``carto_default`` pointing at the emulator, tokens cached under the test's temporary directory."""
    cache_dir = tmp_path / "carto-token-cache"
    monkeypatch.setenv(
        "AIRFLOW_CONN_CARTO_DEFAULT",
        carto_emulator.airflow_connection_json(
            cache_dir=str(cache_dir), bigquery_api_endpoint=carto_emulator.url
        ),
    )
    return "carto_default"
