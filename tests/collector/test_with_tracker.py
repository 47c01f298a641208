"""The real Python tracker talks to our collector and every event lands in RawEvents."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp.test_utils import TestClient
from snowplow_tracker import Emitter, PageView, StructuredEvent, Tracker

from .conftest import Sink

pytestmark = pytest.mark.tracker

TP2 = "/com.snowplowanalytics.snowplow/tp2"


def send_with_tracker(*, port: int, method: str, batch_size: int) -> list[int]:
    """Track three events with a real tracker; return the sizes of the batches it saw accepted."""
    accepted: list[int] = []
    failed: list[Any] = []
    emitter = Emitter(
        f"127.0.0.1:{port}",
        protocol="http",
        method=method,  # type: ignore[arg-type]
        batch_size=batch_size,
        on_success=lambda events: accepted.append(len(events)),
        on_failure=lambda count, events: failed.append(count),
    )
    tracker = Tracker(namespace="qa", emitters=emitter, app_id="shop")
    tracker.track(PageView(page_url="https://shop.test/basket", page_title="Basket"))
    tracker.track(StructuredEvent(category="checkout", action="pay"))
    tracker.track(StructuredEvent(category="checkout", action="done"))
    tracker.flush()
    assert failed == []
    return accepted


async def test_get_tracker_events_are_stored_one_per_request(
    client: TestClient, sink: Sink
) -> None:
    accepted = await asyncio.to_thread(
        send_with_tracker, port=client.port, method="get", batch_size=1
    )

    stored = await sink.payloads()
    assert sum(accepted) == 3
    assert [payload.path for payload in stored] == ["/i"] * 3
    events = [parse_qs(payload.querystring or "") for payload in stored]
    assert [event["e"][0] for event in events] == ["pv", "se", "se"]
    assert all(event["aid"] == ["shop"] for event in events)
    assert all(payload.user_agent and "python-requests" in payload.user_agent for payload in stored)


async def test_post_tracker_batch_is_stored_as_one_payload(client: TestClient, sink: Sink) -> None:
    accepted = await asyncio.to_thread(
        send_with_tracker, port=client.port, method="post", batch_size=3
    )

    [payload] = await sink.payloads()
    assert accepted == [3]
    assert payload.path == TP2
    assert payload.content_type == "application/json; charset=utf-8"
    body = json.loads(payload.body or "")
    assert body["schema"].startswith("iglu:com.snowplowanalytics.snowplow/payload_data/")
    assert [event["e"] for event in body["data"]] == ["pv", "se", "se"]
