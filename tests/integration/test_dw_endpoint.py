"""The CARTO DW BigQuery client: every call has a timeout, and an endpoint that cannot be reached or
does not answer fails with a message naming it (instead of minutes of silent retries)."""

from __future__ import annotations

import socket

import pytest

from carto_provider.errors import BigQueryEndpointError
from carto_provider.hooks.carto import CartoAuthHook


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(60)
def test_an_unreachable_endpoint_is_named(carto_connection):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    client = CartoAuthHook().get_carto_dw_client(api_endpoint=endpoint)
    with pytest.raises(
        BigQueryEndpointError, match=rf"Could not reach the BigQuery endpoint {endpoint}.*3 attempts"
    ):
        client.query("SELECT 1").result()


@pytest.mark.timeout(60)
def test_a_silent_endpoint_times_out_with_its_name(carto_connection, carto_emulator):
    hook = CartoAuthHook()
    assert next(iter(hook.get_carto_dw_client().query("SELECT 1 AS one").result()))["one"] == 1
    client = hook.get_carto_dw_client(bigquery_timeout=(5.0, 1.0))
    carto_emulator.set_latency("POST /bigquery/v2/projects/*", 4.0)
    with pytest.raises(BigQueryEndpointError, match=rf"{carto_emulator.url} did not answer POST within"):
        client.query("SELECT 2").result()
    carto_emulator.set_latency("POST /bigquery/v2/projects/*", 0)
