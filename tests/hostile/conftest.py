"""Fixtures: a hostile server, and ``carto_default`` pointing at it (tokens cached in a temporary dir)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.server import HostileServer


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A hostile CARTO (auth server and API) on loopback."""
    with HostileServer() as server:
        yield server


@pytest.fixture
def hostile_conn(hostile: HostileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HostileServer:
    """``carto_default`` is the hostile server."""
    connection = hostile.connection(token_cache_dir=str(tmp_path / "cache"))
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEFAULT", json.dumps(connection))
    return hostile
