"""The Node tracker (``@snowplow/node-tracker``) through the collector into ``RawEvents``.

``js/node_tracker.js`` tracks a page view, a structured event and a self-describing event with
an entity, and sets the network user id, which the tracker sends as ``nuid``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import pytest

from snowplow_pipeline import payloads

from .conftest import RawEvents, RunningCollector, run_node_script
from .layout import TrackerPackages

pytestmark = [pytest.mark.tracker, pytest.mark.nsq]

TP2 = "/com.snowplowanalytics.snowplow/tp2"
CHECKOUT = {"schema": "iglu:com.acme/checkout/jsonschema/1-0-0", "data": {"step": 3}}
BASKET = {
    "schema": "iglu:com.acme/basket/jsonschema/1-0-0",
    "data": {"items": 2, "currency": "EUR"},
}


def decode_base64_json(encoded: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


async def send_with_node_tracker(
    service: RunningCollector, packages: TrackerPackages, *, method: str, network_user_id: str
) -> dict[str, Any]:
    result = await run_node_script(
        "node_tracker.js",
        [service.url, method, network_user_id],
        node_path=[packages.node_tracker.node_modules],
    )
    return result.output


def assert_sent_by_node(
    payload: payloads.CollectorPayload, *, service: RunningCollector, sent_between: range
) -> None:
    assert payload.schema == payloads.SCHEMA
    assert payload.ip_address == "127.0.0.1"
    assert payload.collector == service.settings.collector_name
    assert payload.encoding == "UTF-8"
    assert payload.timestamp_ms in sent_between
    assert payload.hostname == "127.0.0.1"
    assert payload.user_agent == "node"
    assert payload.referer_uri is None
    assert f"Host: 127.0.0.1:{service.port}" in payload.headers
    assert not any(header.startswith("Cookie:") for header in payload.headers)


def assert_checkout_events(events: list[dict[str, Any]], *, event_ids: list[str]) -> None:
    """The three events of the script, whichever way they travelled (all values are strings)."""
    page_view, structured, self_describing = events
    assert [event["eid"] for event in events] == event_ids
    assert {event["aid"] for event in events} == {"shop-node"}
    assert {event["tna"] for event in events} == {"qa-node"}
    assert {event["tv"] for event in events} == {"node-4.8.0"}
    assert {event["p"] for event in events} == {"srv"}
    assert (page_view["e"], page_view["url"], page_view["page"]) == (
        "pv",
        "https://shop.test/basket",
        "Basket",
    )
    assert (structured["e"], structured["se_ca"], structured["se_ac"], structured["se_va"]) == (
        "se",
        "checkout",
        "pay",
        "42.5",
    )
    assert self_describing["e"] == "ue"
    unstruct = decode_base64_json(self_describing["ue_px"])
    assert unstruct == {
        "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        "data": CHECKOUT,
    }
    contexts = decode_base64_json(self_describing["cx"])
    assert contexts == {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [BASKET],
    }


async def test_node_tracker_get_sends_each_event_as_its_own_payload(
    collector_service: RunningCollector,
    raw_events: RawEvents,
    tracker_packages: TrackerPackages,
) -> None:
    network_user_id = str(uuid.uuid4())
    started = time.time_ns() // 1_000_000

    output = await send_with_node_tracker(
        collector_service, tracker_packages, method="get", network_user_id=network_user_id
    )

    stored = await raw_events.payloads(3)
    assert output["requests"] == [{"status": 200, "events": 1}] * 3
    for payload in stored:
        assert_sent_by_node(
            payload,
            service=collector_service,
            sent_between=range(started, time.time_ns() // 1_000_000 + 1),
        )
        assert (payload.path, payload.body, payload.content_type) == ("/i", None, None)
        # The nuid query parameter decides the network user id of a GET.
        assert payload.network_user_id == network_user_id
    events = [
        {name: values[0] for name, values in parse_qs(payload.querystring or "").items()}
        for payload in stored
    ]
    assert {event["nuid"] for event in events} == {network_user_id}
    assert_checkout_events(events, event_ids=output["eventIds"])


async def test_node_tracker_post_sends_the_three_events_as_one_batch(
    collector_service: RunningCollector,
    raw_events: RawEvents,
    tracker_packages: TrackerPackages,
) -> None:
    network_user_id = str(uuid.uuid4())
    started = time.time_ns() // 1_000_000

    output = await send_with_node_tracker(
        collector_service, tracker_packages, method="post", network_user_id=network_user_id
    )

    [payload] = await raw_events.payloads(1)
    assert output["requests"] == [{"status": 200, "events": 3}]
    assert_sent_by_node(
        payload,
        service=collector_service,
        sent_between=range(started, time.time_ns() // 1_000_000 + 1),
    )
    assert (payload.path, payload.querystring) == (TP2, None)
    # As upstream's collector, only a nuid in the query string sets the payload's network user
    # id; a nuid inside a POST body is left to enrich, so the request gets a new id.
    assert payload.network_user_id not in (None, network_user_id)
    assert str(uuid.UUID(payload.network_user_id or "")) == payload.network_user_id
    assert payload.content_type == "application/json; charset=utf-8"
    body = json.loads(payload.body or "")
    assert body["schema"] == "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
    assert_checkout_events(body["data"], event_ids=output["eventIds"])
    assert {event["nuid"] for event in body["data"]} == {network_user_id}
