"""Item 1: every answer is read streamed, within a byte budget counted after decoding."""

from __future__ import annotations

import asyncio
import json
import zlib

import pytest

from carto_provider.api import dbapi
from carto_provider.api.transport import AsyncTransport, Transport
from carto_provider.errors import CredentialsError, ResponseTooLargeError
from carto_provider.hooks.dbapi import CartoDbApiHook
from carto_provider.hooks.sql import CartoSQLHook
from tests.hostile.server import MiB, big_json, gzip_bomb, json_body

QUERY = "POST /v3/sql/carto_dw/query"


def test_a_gzip_bomb_is_refused_once_its_decoded_size_passes_the_budget(hostile):
    hostile.on("GET /bomb", gzip_bomb(64 * MiB))
    refused = pytest.raises(ResponseTooLargeError, match="more than 1,048,576 bytes once decoded")
    with Transport(hostile.url, max_body=MiB) as transport, refused as caught:
        transport.request("GET", "/bomb")
    assert caught.value.status == 200
    assert hostile.calls("GET /bomb") == 1  # not retried: a larger answer would come again


def test_a_large_chunked_answer_is_refused_async_too(hostile):
    hostile.on("GET /big", big_json(16 * MiB))

    async def call():
        async with AsyncTransport(hostile.url, max_body=2 * MiB) as transport:
            await transport.arequest("GET", "/big")

    with pytest.raises(ResponseTooLargeError, match="more than 2,097,152 bytes"):
        asyncio.run(call())


def test_an_answer_within_the_budget_is_read_whole(hostile):
    hostile.on("GET /small", big_json(MiB))
    with Transport(hostile.url, max_body=4 * MiB) as transport:
        body = transport.request_json("GET", "/small")
    assert len(body["rows"]) > 1_000


def test_an_error_answer_is_read_up_to_one_mib_only(hostile):
    hostile.on("GET /err", json_body({"error": "x" * (2 * MiB)}, status=500))
    with Transport(hostile.url) as transport, pytest.raises(ResponseTooLargeError, match="HTTP 500"):
        transport.request("GET", "/err", policy=None)


def test_the_token_endpoint_bomb_is_refused_by_the_auth_flow(hostile_conn):
    hostile_conn.token_answer = gzip_bomb(32 * MiB)
    with pytest.raises(CredentialsError, match="larger than 1024 KiB"):
        CartoSQLHook().get_access_token()


def test_the_db_api_refuses_a_query_answer_above_max_response_bytes(hostile_conn):
    hostile_conn.on(QUERY, gzip_bomb(32 * MiB))
    cursor = CartoDbApiHook(max_response_bytes=4 * MiB).get_conn().cursor()
    with pytest.raises(dbapi.DataError, match="max_response_bytes") as raised:
        cursor.execute("SELECT * FROM big")
    assert isinstance(raised.value.__cause__, ResponseTooLargeError)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
def test_max_response_bytes_must_be_a_positive_number_of_bytes(value):
    with pytest.raises(ValueError, match="max_response_bytes"):
        CartoSQLHook(max_response_bytes=value)


@pytest.mark.parametrize("wbits", [31, 15, -15], ids=["gzip", "deflate", "raw-deflate"])
def test_a_compressed_answer_within_the_budget_is_inflated_whole(hostile, wbits):
    body = json.dumps({"rows": [{"n": i} for i in range(50_000)]}).encode()
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    packed = packer.compress(body) + packer.flush()
    encoding = "gzip" if wbits == 31 else "deflate"
    hostile.on("GET /z", json_body(packed, headers={"Content-Encoding": encoding}))
    with Transport(hostile.url, max_body=len(body)) as transport:
        assert transport.request_json("GET", "/z")["rows"][-1] == {"n": 49_999}
    assert "gzip" in hostile.seen[-1][1].get("Accept-Encoding", "")
