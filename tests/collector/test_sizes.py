"""Size rules: 413 above the drop limit, POST batches split under the message limit, and
size_violation bad rows for what cannot be split."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from snowplow_pipeline import badrows, payloads
from snowplow_pipeline.collector import splitting

from .conftest import MakeClient, Sink

TP2 = "/com.snowplowanalytics.snowplow/tp2"
PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"


def batch(count: int, *, filler_chars: int = 150) -> list[dict[str, str]]:
    return [
        {"e": "pv", "eid": f"event-{index:03d}", "url": "é" + "x" * filler_chars}
        for index in range(count)
    ]


def body_of(events: Sequence[object]) -> bytes:
    return json.dumps({"schema": PAYLOAD_DATA, "data": events}).encode()


def a_payload(*, body: str | None) -> payloads.CollectorPayload:
    return payloads.CollectorPayload(
        ip_address="203.0.113.7",
        timestamp_ms=1_700_000_000_000,
        collector="snowplow-mini-collector-test-memory",
        path=TP2,
        body=body,
        headers=["Host: collector.example"],
        content_type="application/json",
        hostname="collector.example",
        network_user_id="9f0a4cb4-5f7e-4a3e-8f7d-1a2b3c4d5e6f",
    )


# Pure splitting.


def test_payload_within_the_limit_is_one_message_as_serialized() -> None:
    payload = a_payload(body=body_of(batch(3)).decode())

    messages = splitting.to_messages(payload, is_post=True, max_bytes=10_000)

    assert messages.raw == [payloads.serialize(payload)]
    assert messages.bad == []


def test_batch_is_split_into_parts_under_the_limit_with_every_event_once_in_order() -> None:
    events = batch(40)
    payload = a_payload(body=body_of(events).decode())

    messages = splitting.to_messages(payload, is_post=True, max_bytes=2_000)

    parts = [payloads.deserialize(message) for message in messages.raw]
    assert len(parts) > 3
    assert all(len(message) <= 2_000 for message in messages.raw)
    assert [event for part in parts for event in json.loads(part.body or "")["data"]] == events
    assert {json.loads(part.body or "")["schema"] for part in parts} == {PAYLOAD_DATA}
    assert all(part.network_user_id == payload.network_user_id for part in parts)
    assert all(part.timestamp_ms == payload.timestamp_ms for part in parts)
    assert messages.bad == []


def test_parts_are_filled_up_to_the_limit() -> None:
    payload = a_payload(body=body_of(batch(40)).decode())

    messages = splitting.to_messages(payload, is_post=True, max_bytes=2_000)

    event_bytes = len(json.dumps(batch(1)[0], separators=(",", ":"), ensure_ascii=False).encode())
    assert all(len(message) > 2_000 - event_bytes - 1 for message in messages.raw[:-1])


def test_single_event_too_big_becomes_a_size_violation_and_the_rest_is_kept() -> None:
    events = [*batch(2), {"e": "pv", "eid": "huge", "url": "x" * 5_000}, *batch(2)]
    payload = a_payload(body=body_of(events).decode())

    messages = splitting.to_messages(payload, is_post=True, max_bytes=2_000)

    kept = [e for m in messages.raw for e in json.loads(payloads.deserialize(m).body or "")["data"]]
    assert [event["eid"] for event in kept] == [
        "event-000", "event-001", "event-000", "event-001"
    ]  # fmt: skip
    [row] = [badrows.parse(message) for message in messages.bad]
    failure = row["data"]["failure"]
    assert row["schema"] == badrows.SIZE_VIOLATION
    assert failure["maximumAllowedSizeBytes"] == 2_000
    assert failure["actualSizeBytes"] > 5_000
    assert "each event of a POST batch" in failure["expectation"]
    assert row["data"]["payload"] == '{"e":"pv","eid":"huge","url":"' + "x" * 170


@pytest.mark.parametrize(
    ("is_post", "body", "reason"),
    [
        (False, None, "a GET request cannot be split"),
        (True, "x" * 3_000, "a POST body that is not JSON cannot be split"),
        (True, json.dumps(["x" * 3_000]), "not a self-describing JSON"),
        (True, json.dumps({"schema": PAYLOAD_DATA, "data": {"x": "y" * 3_000}}), "data is not"),
    ],
    ids=["get", "not-json", "not-self-describing", "data-not-array"],
)
def test_oversized_payload_that_cannot_be_split_becomes_one_size_violation(
    is_post: bool, body: str | None, reason: str
) -> None:
    payload = a_payload(body=body)
    if body is None:
        payload.querystring = "e=pv&url=" + "x" * 3_000

    messages = splitting.to_messages(payload, is_post=is_post, max_bytes=2_000)

    assert messages.raw == []
    [row] = [badrows.parse(message) for message in messages.bad]
    assert (
        row["schema"]
        == "iglu:com.snowplowanalytics.snowplow.badrows/size_violation/jsonschema/1-0-0"
    )
    assert row["data"]["processor"] == {
        "artifact": "snowplow-mini-collector",
        "version": badrows.VERSION,
    }
    failure = row["data"]["failure"]
    assert failure["maximumAllowedSizeBytes"] == 2_000
    assert failure["actualSizeBytes"] == len(payloads.serialize(payload))
    assert reason in failure["expectation"]
    assert "at most 2000 bytes" in failure["expectation"]
    assert failure["timestamp"].endswith("Z")
    assert row["data"]["payload"].startswith('{"vendor":"com.snowplowanalytics.snowplow"')
    assert len(row["data"]["payload"]) == 200


# The same rules through HTTP.


async def test_body_over_the_drop_limit_is_refused_with_413_naming_the_limit(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(drop_payload_bytes=2_048)

    response = await client.post(TP2, data=b"x" * 3_000)

    assert response.status == 413
    assert await response.text() == "request body is 3000 bytes, limit is 2048 bytes\n"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert await sink.payloads() == []
    assert await sink.bad_rows() == []


async def test_chunked_body_over_the_drop_limit_is_refused_with_413(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(drop_payload_bytes=2_048)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1_000

    response = await client.post(TP2, data=chunks())

    assert response.status == 413
    assert await response.text() == "request body is over the limit of 2048 bytes\n"
    assert await sink.payloads() == []


async def test_chunked_body_within_the_drop_limit_is_stored_whole(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(drop_payload_bytes=2_048)

    async def chunks() -> AsyncIterator[bytes]:
        for index in range(4):
            yield str(index).encode() * 500

    response = await client.post("/com.acme/v1", data=chunks())

    assert response.status == 200
    [payload] = await sink.payloads()
    assert payload.body == "0" * 500 + "1" * 500 + "2" * 500 + "3" * 500


async def test_body_of_exactly_the_drop_limit_is_accepted(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(drop_payload_bytes=2_048)

    response = await client.post("/com.acme/v1", data=b"x" * 2_048)

    assert response.status == 200
    [payload] = await sink.payloads()
    assert payload.body == "x" * 2_048


async def test_oversized_post_batch_is_stored_as_several_payloads_each_under_the_limit(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(max_message_bytes=3_000)
    events = batch(60)

    response = await client.post(
        TP2, data=body_of(events), headers={"Content-Type": "application/json"}
    )

    assert (response.status, await response.text()) == (200, "ok")
    stored = await sink.payloads()
    assert len(stored) > 3
    assert all(len(message) <= 3_000 for message in sink.raw)
    assert [e for part in stored for e in json.loads(part.body or "")["data"]] == events
    assert len({part.network_user_id for part in stored}) == 1
    assert await sink.bad_rows() == []


async def test_oversized_get_is_answered_200_and_kept_as_a_size_violation(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(max_message_bytes=1_000)

    response = await client.get("/i?e=pv&url=" + "x" * 2_000)

    assert response.status == 200
    assert response.headers["Content-Type"] == "image/gif"
    assert await sink.payloads() == []
    [row] = await sink.bad_rows()
    assert row["schema"] == badrows.SIZE_VIOLATION
    assert row["data"]["processor"]["artifact"] == "snowplow-mini-collector"
    assert row["data"]["failure"]["maximumAllowedSizeBytes"] == 1_000
    assert row["data"]["failure"]["actualSizeBytes"] > 2_000
    assert "a GET request cannot be split" in row["data"]["failure"]["expectation"]
    assert len(row["data"]["payload"]) == 100


async def test_max_payload_bytes_below_the_message_limit_is_the_limit_applied(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(max_payload_bytes=1_500, max_message_bytes=1_000_000)

    await client.post(TP2, data=b"x" * 2_000)

    [row] = await sink.bad_rows()
    assert row["data"]["failure"]["maximumAllowedSizeBytes"] == 1_500
    assert await sink.payloads() == []


# Compressed bodies: the limit is on what they decompress to.


async def test_gzip_body_is_stored_decompressed(make_client: MakeClient, sink: Sink) -> None:
    client = await make_client()
    events = batch(3)

    response = await client.post(
        TP2,
        data=gzip.compress(body_of(events)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert response.status == 200
    [payload] = await sink.payloads()
    assert json.loads(payload.body or "")["data"] == events


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_compressed_body_over_the_drop_limit_once_decompressed_is_refused_with_413(
    make_client: MakeClient, sink: Sink, encoding: str
) -> None:
    client = await make_client(drop_payload_bytes=100_000)
    bomb = b"A" * 3_000_000
    data = gzip.compress(bomb) if encoding == "gzip" else zlib.compress(bomb)
    assert len(data) < 100_000

    response = await client.post(TP2, data=data, headers={"Content-Encoding": encoding})

    assert response.status == 413
    assert await response.text() == (
        "request body is over the limit of 100000 bytes (decompressed)\n"
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert await sink.payloads() == []
    assert await sink.bad_rows() == []


async def test_body_that_does_not_decompress_is_refused_with_400_naming_why(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client()

    response = await client.post(TP2, data=b"not gzip at all", headers={"Content-Encoding": "gzip"})

    assert response.status == 400
    assert (await response.text()).startswith("request body could not be read: ")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert await sink.payloads() == []
    text = await (await client.get("/metrics")).text()
    assert f'collector_requests_total{{method="POST",route="{TP2}",status="400"}} 1.0' in text


# Text that is not valid UTF-8 inside a batch that must be split.


async def test_split_batch_with_a_lone_surrogate_keeps_every_event_replaced_not_a_500(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(max_message_bytes=3_000)
    events = batch(30)
    body = body_of([*events, {"e": "pv", "page": "SURROGATE"}]).replace(
        b'"SURROGATE"', b'"\\ud800 half"'
    )

    response = await client.post(TP2, data=body, headers={"Content-Type": "application/json"})

    assert (response.status, await response.text()) == (200, "ok")
    stored = [e for part in await sink.payloads() for e in json.loads(part.body or "")["data"]]
    assert stored == [*events, {"e": "pv", "page": "\ufffd\ufffd\ufffd half"}]
    assert all(len(message) <= 3_000 for message in sink.raw)


async def test_oversized_event_with_a_lone_surrogate_is_a_readable_bad_row(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(max_message_bytes=3_000)
    big = {"e": "pv", "page": "SURROGATE", "pad": "x" * 4_000}
    body = body_of([big, *batch(2)]).replace(b'"SURROGATE"', b'"\\udfff"')

    response = await client.post(TP2, data=body, headers={"Content-Type": "application/json"})

    assert response.status == 200
    [row] = await sink.bad_rows()
    assert '"page":"\ufffd\ufffd\ufffd"' in row["data"]["payload"]
    assert len(await sink.payloads()) == 1


async def test_large_batch_is_split_off_the_event_loop(
    make_client: MakeClient, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(max_message_bytes=3_000)
    threads: list[str] = []
    to_messages = splitting.to_messages

    def recording(*args: Any, **kwargs: Any) -> splitting.Messages:
        threads.append(threading.current_thread().name)
        return to_messages(*args, **kwargs)

    monkeypatch.setattr(splitting, "to_messages", recording)

    await client.post(TP2, data=body_of(batch(1)), headers={"Content-Type": "application/json"})
    await client.post(TP2, data=body_of(batch(40)), headers={"Content-Type": "application/json"})

    main = threading.main_thread().name
    assert threads[0] == main  # a small body is handled on the loop, as it is cheap
    assert threads[1] != main
    assert len(await sink.payloads()) > 2
