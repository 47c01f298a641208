"""The collector payload read back from RawEvents holds the request as upstream records it."""

from __future__ import annotations

import time

import yarl
from aiohttp.test_utils import TestClient

from snowplow_pipeline import payloads

from .conftest import MakeClient, Sink

TP2 = "/com.snowplowanalytics.snowplow/tp2"


async def test_get_request_is_stored_field_by_field(make_client: MakeClient, sink: Sink) -> None:
    client = await make_client(collector_name="snowplow-mini-collector-9.9.9-memory")
    before_ms = time.time_ns() // 1_000_000

    await client.get(
        yarl.URL("/i?e=pv&url=http%3A%2F%2Fshop.example.com%2F&tv=js-3.0", encoded=True),
        headers={
            "User-Agent": "Mozilla/5.0 (test)",
            "Referer": "http://shop.example.com/cart",
            "X-Forwarded-For": "203.0.113.7, 10.0.0.1",
            "Cookie": "sp=4b1a6c0e-1111-4222-8333-944445555666; bad cookie=1; theme=dark",
        },
    )

    after_ms = time.time_ns() // 1_000_000
    [payload] = await sink.payloads()
    assert payload.schema == "iglu:com.snowplowanalytics.snowplow/CollectorPayload/thrift/1-0-0"
    assert payload.ip_address == "203.0.113.7"
    assert before_ms <= payload.timestamp_ms <= after_ms
    assert payload.encoding == "UTF-8"
    assert payload.collector == "snowplow-mini-collector-9.9.9-memory"
    assert payload.user_agent == "Mozilla/5.0 (test)"
    assert payload.referer_uri == "http://shop.example.com/cart"
    assert payload.path == "/i"
    assert payload.querystring == "e=pv&url=http%3A%2F%2Fshop.example.com%2F&tv=js-3.0"
    assert payload.body is None
    assert payload.content_type is None
    assert payload.hostname == "127.0.0.1"
    assert payload.network_user_id == "4b1a6c0e-1111-4222-8333-944445555666"
    assert "User-Agent: Mozilla/5.0 (test)" in payload.headers
    assert "X-Forwarded-For: 203.0.113.7, 10.0.0.1" in payload.headers
    assert "Cookie: sp=4b1a6c0e-1111-4222-8333-944445555666; theme=dark" in payload.headers
    assert f"Host: 127.0.0.1:{client.port}" in payload.headers


async def test_post_request_stores_body_and_lower_cased_content_type(
    client: TestClient, sink: Sink
) -> None:
    body = (
        b'{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[]}'
    )

    await client.post(TP2, data=body, headers={"Content-Type": "Application/JSON; Charset=UTF-8"})

    [payload] = await sink.payloads()
    assert payload.body == body.decode()
    assert payload.content_type == "application/json; charset=utf-8"
    assert payload.querystring is None
    assert "Content-Type: Application/JSON; Charset=UTF-8" in payload.headers


async def test_body_that_is_not_utf8_is_stored_with_replacement_characters(
    client: TestClient, sink: Sink
) -> None:
    await client.post(TP2, data=b"caf\xe9 \xff ok")

    [payload] = await sink.payloads()
    assert payload.body == "caf\ufffd \ufffd ok"


async def test_peer_address_is_the_ip_without_forwarded_for(client: TestClient, sink: Sink) -> None:
    await client.get("/i")

    [payload] = await sink.payloads()
    assert payload.ip_address == "127.0.0.1"


async def test_authorization_headers_are_never_stored(client: TestClient, sink: Sink) -> None:
    await client.get(
        "/i",
        headers={"Authorization": "Basic bWluaTpzZWNyZXQ=", "Proxy-Authorization": "Basic eA=="},
    )

    [payload] = await sink.payloads()
    assert not [h for h in payload.headers if "authorization" in h.lower()]
    assert not [h for h in payload.headers if "bWluaTpzZWNyZXQ" in h]


async def test_cookie_header_with_no_valid_cookie_is_not_stored(
    client: TestClient, sink: Sink
) -> None:
    await client.get("/i", headers={"Cookie": "no equals sign; =empty-name"})

    [payload] = await sink.payloads()
    assert not [h for h in payload.headers if h.startswith("Cookie:")]


async def test_stored_payload_decodes_to_the_same_payload_after_a_round_trip(
    client: TestClient, sink: Sink
) -> None:
    await client.get("/com.acme/v1?a=1")

    [payload] = await sink.payloads()
    assert payloads.deserialize(payloads.serialize(payload)) == payload
    assert payload.vendor_and_version == ("com.acme", "v1")
