"""Item 4: the bearer goes to the API origin only; path segments are checked; URL rules everywhere."""

from __future__ import annotations

import json

import pytest

from carto_provider.api.imports import import_path
from carto_provider.api.sql import sql_path
from carto_provider.api.transport import Transport
from carto_provider.auth.urls import check_url, is_loopback_host
from carto_provider.errors import CartoAPIError, ConfigurationError
from carto_provider.hooks.carto import CartoAuthHook
from carto_provider.hooks.sql import CartoSQLHook
from tests.hostile.server import HostileServer, json_body


def test_an_absolute_url_to_another_origin_is_refused_before_anything_is_sent(hostile):
    with HostileServer() as other:
        with (
            Transport(hostile.url, tokens=lambda _: "the-bearer-token") as transport,
            pytest.raises(CartoAPIError, match="not on the API base URL's origin"),
        ):
            transport.request("GET", other.url + "/steal")
        assert other.seen == []


def test_an_absolute_url_on_the_api_origin_is_allowed(hostile):
    hostile.on("GET /v3/ok", json_body({}))
    with Transport(hostile.url) as transport:
        assert transport.request_json("GET", hostile.url + "/v3/ok") == {}


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../query", "x\ny", "", "%2e%2e", "a" * 300])
def test_a_connection_name_or_id_cannot_name_another_api_path(name):
    with pytest.raises((ConfigurationError, ValueError)):
        sql_path(name, "query")
    with pytest.raises((ConfigurationError, ValueError)):
        sql_path("carto_dw", "job", name)
    if name:
        with pytest.raises(ConfigurationError):
            import_path(name)


def test_a_server_supplied_job_id_is_checked_before_it_becomes_a_path(hostile_conn):
    with pytest.raises(ConfigurationError, match="job id"):
        CartoSQLHook().cancel_job("..")
    assert not [key for key, _ in hostile_conn.seen if key.startswith("DELETE")]


def test_ordinary_names_still_work():
    assert sql_path("my-conn_1", "job", "job_f4k3-3xt3rn4l1d") == "/v3/sql/my-conn_1/job/job_f4k3-3xt3rn4l1d"
    assert sql_path("conn with space") == "/v3/sql/conn%20with%20space"


def test_bigquery_api_endpoint_follows_the_url_rules(hostile, monkeypatch):
    connection = hostile.connection(bigquery_api_endpoint="http://bigquery.evil.example.com")
    monkeypatch.setenv("AIRFLOW_CONN_CARTO_DEFAULT", json.dumps(connection))
    with pytest.raises(ConfigurationError, match="bigquery_api_endpoint"):
        CartoAuthHook().settings  # noqa: B018


def test_only_localhost_and_loopback_literals_are_loopback():
    assert is_loopback_host("localhost") and is_loopback_host("127.0.0.2") and is_loopback_host("[::1]")
    assert not is_loopback_host("evil.localhost")
    with pytest.raises(ConfigurationError, match="http"):
        check_url("http://attacker.localhost:8080", what="API base URL")
