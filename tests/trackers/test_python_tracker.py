"""The Python tracker (``snowplow-tracker``) through the collector into nsqd's ``RawEvents``."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from snowplow_tracker import Emitter, PageView, SelfDescribingJson, StructuredEvent, Tracker

from snowplow_pipeline import payloads
from tests.components.nsq_server import NsqdServer

from .conftest import WAIT_SECONDS, RawEvents, RunningCollector

pytestmark = [pytest.mark.tracker, pytest.mark.nsq]

TP2 = "/com.snowplowanalytics.snowplow/tp2"
PYTHON_TRACKER_VERSION = "py-1.1.0"
BASKET = SelfDescribingJson("iglu:com.acme/basket/jsonschema/1-0-0", {"items": 2})


class RecordingSession(requests.Session):
    """A requests session that records the status of every answer the emitter got."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(*args, **kwargs)
        self.statuses.append(response.status_code)
        return response


def make_tracker(
    service: RunningCollector, *, method: str, batch_size: int, session: requests.Session
) -> tuple[Tracker, list[int]]:
    """A tracker sending to ``service``; the list collects the sizes of accepted batches."""
    accepted: list[int] = []
    emitter = Emitter(
        service.url,
        method=method,  # type: ignore[arg-type]
        batch_size=batch_size,
        max_retry_delay_seconds=1,
        session=session,
        on_success=lambda events: accepted.append(len(events)),
    )
    return Tracker(namespace="qa-py", emitters=emitter, app_id="shop-py"), accepted


def track_checkout(tracker: Tracker) -> list[str]:
    """A page view, a structured event with an entity, and a flush; returns the event ids."""
    event_ids = [
        tracker.track(PageView(page_url="https://shop.test/basket", page_title="Basket")),
        tracker.track(StructuredEvent(category="checkout", action="pay", context=[BASKET])),
    ]
    tracker.flush()
    return [event_id for event_id in event_ids if event_id is not None]


def assert_sent_by_python_tracker(
    payload: payloads.CollectorPayload, *, service: RunningCollector, sent_between: range
) -> None:
    """The fields every request of the Python tracker gets, whatever its method."""
    assert payload.schema == payloads.SCHEMA
    assert payload.ip_address == "127.0.0.1"
    assert payload.collector == service.settings.collector_name
    assert payload.encoding == "UTF-8"
    assert payload.timestamp_ms in sent_between
    assert payload.hostname == "127.0.0.1"
    assert payload.user_agent is not None
    assert payload.user_agent.startswith("python-requests/")
    assert payload.referer_uri is None
    assert f"Host: 127.0.0.1:{service.port}" in payload.headers
    assert f"User-Agent: {payload.user_agent}" in payload.headers
    assert str(uuid.UUID(payload.network_user_id or "")) == payload.network_user_id


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def decode_entities(encoded: str) -> list[dict[str, Any]]:
    """The entities of a ``cx`` parameter (base64url of a contexts self-describing JSON)."""
    contexts = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert contexts["schema"].startswith("iglu:com.snowplowanalytics.snowplow/contexts/")
    return list(contexts["data"])


async def test_get_emitter_sends_each_event_as_its_own_payload(
    collector_service: RunningCollector, raw_events: RawEvents
) -> None:
    session = RecordingSession()
    tracker, accepted = make_tracker(collector_service, method="get", batch_size=1, session=session)
    started = now_ms()

    event_ids = await asyncio.to_thread(track_checkout, tracker)

    stored = await raw_events.payloads(2)
    assert session.statuses == [200, 200]
    assert accepted == [1, 1]
    for payload in stored:
        assert_sent_by_python_tracker(
            payload, service=collector_service, sent_between=range(started, now_ms() + 1)
        )
        assert payload.path == "/i"
        assert payload.body is None
        assert payload.content_type is None
    page_view, structured = (parse_qs(payload.querystring or "") for payload in stored)
    assert [page_view["eid"], structured["eid"]] == [[event_id] for event_id in event_ids]
    assert page_view["e"] == ["pv"]
    assert page_view["url"] == ["https://shop.test/basket"]
    assert page_view["page"] == ["Basket"]
    assert structured["e"] == ["se"]
    assert (structured["se_ca"], structured["se_ac"]) == (["checkout"], ["pay"])
    assert decode_entities(structured["cx"][0]) == [BASKET.to_json()]
    for event in (page_view, structured):
        assert (event["aid"], event["tna"], event["tv"]) == (
            ["shop-py"],
            ["qa-py"],
            [PYTHON_TRACKER_VERSION],
        )


async def test_post_emitter_sends_the_batch_as_one_payload(
    collector_service: RunningCollector, raw_events: RawEvents
) -> None:
    session = RecordingSession()
    tracker, accepted = make_tracker(
        collector_service, method="post", batch_size=2, session=session
    )
    started = now_ms()

    event_ids = await asyncio.to_thread(track_checkout, tracker)

    [payload] = await raw_events.payloads(1)
    assert session.statuses == [200]
    assert accepted == [2]
    assert_sent_by_python_tracker(
        payload, service=collector_service, sent_between=range(started, now_ms() + 1)
    )
    assert payload.path == TP2
    assert payload.querystring is None
    assert payload.content_type == "application/json; charset=utf-8"
    body = json.loads(payload.body or "")
    assert body["schema"] == "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
    page_view, structured = body["data"]
    assert [page_view["eid"], structured["eid"]] == event_ids
    assert (page_view["e"], page_view["url"], page_view["page"]) == (
        "pv",
        "https://shop.test/basket",
        "Basket",
    )
    assert (structured["e"], structured["se_ca"], structured["se_ac"]) == ("se", "checkout", "pay")
    assert decode_entities(structured["cx"]) == [BASKET.to_json()]
    assert all(event["tv"] == PYTHON_TRACKER_VERSION for event in body["data"])


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def eventually(check: Callable[[], bool], *, what: str) -> None:
    """Poll ``check`` every 50 ms until it holds; fail after ``WAIT_SECONDS``."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_SECONDS} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_event_refused_while_nsqd_is_down_lands_once_after_the_trackers_retry(
    fresh_nsqd: NsqdServer, collector_service: RunningCollector, raw_events: RawEvents
) -> None:
    session = RecordingSession()
    tracker, accepted = make_tracker(
        collector_service, method="post", batch_size=1, session=session
    )
    sink_health = f"{collector_service.url}/sink-health"
    before_id = await asyncio.to_thread(tracker.track, PageView(page_url="https://shop.test/"))
    assert session.statuses == [200]
    # Consumed and finished before nsqd stops, or nsqd would deliver it again after its restart.
    await raw_events.payloads(1)

    # nsqd goes away: the collector refuses the event, and the emitter keeps it for a retry.
    await asyncio.to_thread(fresh_nsqd.stop)
    assert await asyncio.to_thread(http_status, sink_health) == 503
    during_id = await asyncio.to_thread(
        tracker.track, StructuredEvent(category="checkout", action="pay")
    )
    await eventually(lambda: session.statuses.count(503) >= 2, what="a refused retry")

    # nsqd comes back on the same ports: a later retry of the emitter is accepted.
    await asyncio.to_thread(fresh_nsqd.start)
    await eventually(lambda: accepted == [1, 1], what="the retried event to be accepted")
    assert await asyncio.to_thread(http_status, sink_health) == 200

    stored = await raw_events.payloads(2)
    assert set(session.statuses) == {200, 503}
    assert session.statuses[-1] == 200
    assert [json.loads(p.body or "")["data"][0]["eid"] for p in stored] == [before_id, during_id]
