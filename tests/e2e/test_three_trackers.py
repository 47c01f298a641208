"""Three real trackers through the rendered Mini: every event ends in ``good`` or ``bad``.

The Python tracker (GET and POST), the Node tracker (GET and POST, ``js/node_tracker.js``) and
the browser tracker in headless Chromium (GET and POST, ``js/browser_tracker.js``) send to the
collector of the Mini the operator renders; enrich validates against the spec's registry and
the sinks load Elasticsearch. Each event is then found by its id in exactly one index, with
the fields a user looks at, and the counts reconcile: sent = good + bad.
"""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import elasticsearch
import pytest
from snowplow_tracker import (
    Emitter,
    PageView,
    SelfDescribing,
    SelfDescribingJson,
    StructuredEvent,
    Subject,
    Tracker,
)

from snowplow_pipeline import badrows
from tests.e2e import outcomes
from tests.e2e.rendered import RenderedPipeline
from tests.trackers.conftest import run_node_script
from tests.trackers.layout import TrackerPackages
from tests.trackers.test_browser_tracker import visit

pytestmark = [pytest.mark.nsq, pytest.mark.elasticsearch, pytest.mark.tracker]

CHECKOUT = "iglu:com.acme/checkout/jsonschema/1-0-0"
USER = "iglu:com.acme/user/jsonschema/1-0-0"
MISSING = "iglu:com.acme/coupon/jsonschema/1-0-0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SETTLE_SECONDS = 60.0


def send_with_python_tracker(collector_url: str, method: str) -> dict[str, str]:
    """Track three good and two bad events; return event id -> expected outcome."""
    emitter = Emitter(
        collector_url.removeprefix("http://"), protocol="http", method=method, batch_size=1
    )
    subject = Subject().set_platform("web").set_useragent(CHROME).set_ip_address("198.51.100.77")
    tracker = Tracker(namespace="e2e", emitters=emitter, app_id=f"py-{method}", subject=subject)
    expected = {
        tracker.track(
            PageView(page_url="https://shop.test/?utm_source=news&utm_medium=email")
        ): "page_view",
        tracker.track(StructuredEvent(category="shop", action="add", value=2.0)): "struct",
        tracker.track(
            SelfDescribing(
                SelfDescribingJson(CHECKOUT, {"price": 9.5, "sku": "B-1"}),
                context=[SelfDescribingJson(USER, {"id": "u1"})],
            )
        ): "unstruct",
        tracker.track(
            SelfDescribing(SelfDescribingJson(CHECKOUT, {"price": "free", "sku": "B-1"}))
        ): "bad: invalid",
        tracker.track(SelfDescribing(SelfDescribingJson(MISSING, {"code": "X"}))): "bad: missing",
    }
    tracker.flush()
    return {str(event_id): outcome for event_id, outcome in expected.items()}


async def send_with_node_tracker(
    collector_url: str, method: str, packages: TrackerPackages
) -> list[str]:
    """A page view, a structured event and a checkout that breaks its schema; their ids."""
    result = await run_node_script(
        "node_tracker.js",
        [collector_url, method, f"nuid-{method}"],
        node_path=[packages.node_tracker.node_modules],
    )
    assert {request["status"] for request in result.output["requests"]} == {200}
    return list(result.output["eventIds"])


def violations(row: dict[str, Any]) -> list[dict[str, Any]]:
    assert row["schema"] == badrows.SCHEMA_VIOLATIONS
    return list(row["data"]["failure"]["messages"])


def assert_python_events(outcome: outcomes.Outcome, expected: dict[str, str]) -> None:
    for event_id, kind in expected.items():
        if kind.startswith("bad"):
            assert event_id not in outcome.good
            [row] = outcome.bad[event_id]
            [message] = violations(row)
            schema_key = CHECKOUT if kind == "bad: invalid" else MISSING
            assert message["schemaKey"] == schema_key
            continue
        event = outcome.good[event_id]
        assert event_id not in outcome.bad
        assert (event["event"], event["platform"], event["user_ipaddress"]) == (
            kind,
            "web",
            "198.51.100.x",  # anon_ip
        )
        ua = event["contexts_com_snowplowanalytics_snowplow_ua_parser_context_1"][0]
        assert ua["useragentFamily"] == "Chrome"
        if kind == "page_view":
            assert (event["mkt_source"], event["mkt_medium"]) == ("news", "email")
            assert event["page_urlhost"] == "shop.test"
        if kind == "unstruct":
            assert event["unstruct_event_com_acme_checkout_1"] == {"price": 9.5, "sku": "B-1"}
            assert event["contexts_com_acme_user_1"] == [{"id": "u1"}]


def assert_node_events(outcome: outcomes.Outcome, event_ids: list[str], method: str) -> None:
    page_view, structured, checkout = event_ids
    for event_id, kind in ((page_view, "page_view"), (structured, "struct")):
        event = outcome.good[event_id]
        assert (event["event"], event["app_id"], event["v_tracker"]) == (
            kind,
            "shop-node",
            "node-4.8.0",
        )
    # A nuid in the query string decides the network user id. Inside a POST body enrich lets
    # the collector's cookie id win, where upstream's Transform takes the nuid: not asserted.
    if method == "get":
        assert outcome.good[page_view]["network_userid"] == "nuid-get"
    assert outcome.good[structured]["se_value"] == 42.5
    [row] = outcome.bad[checkout]
    # The event breaks its schema, and its entity's schema is in no registry.
    keys = sorted(message["schemaKey"] for message in violations(row))
    assert keys == ["iglu:com.acme/basket/jsonschema/1-0-0", CHECKOUT]


async def test_every_tracker_event_is_in_good_or_bad_and_the_counts_reconcile(
    rendered_pipeline: RenderedPipeline,
    es_client: elasticsearch.Elasticsearch,
    tracker_packages: TrackerPackages,
    page_origin: str,
    tmp_path: pathlib.Path,
) -> None:
    url = rendered_pipeline.collector_url

    python_events = {}
    for method in ("get", "post"):
        python_events[method] = await asyncio.to_thread(send_with_python_tracker, url, method)
    node_events = {
        method: await send_with_node_tracker(url, method, tracker_packages)
        for method in ("get", "post")
    }
    for method in ("get", "post"):
        seen = await visit(
            page_origin=page_origin,
            collector_origin=url,
            method=method,
            cookies="default",
            packages=tracker_packages,
            profile_dir=tmp_path / f"profile-{method}",
        )
        assert [answer["status"] for answer in seen.answers] == [200, 200]
    tracked = [e for events in python_events.values() for e in events]
    tracked += [e for events in node_events.values() for e in events]
    outcome = await outcomes.settle(es_client, sent=tracked, timeout_seconds=SETTLE_SECONDS)
    browser = await asyncio.to_thread(
        es_client.search, index="good", query={"term": {"app_id": "shop-web"}}, size=100
    )

    assert not outcome.missing(tracked), outcomes.describe(outcome, tracked)
    assert not outcome.in_both()
    for method in ("get", "post"):
        assert_python_events(outcome, python_events[method])
        assert_node_events(outcome, node_events[method], method)
    browser_events = sorted(hit["_source"]["event"] for hit in browser["hits"]["hits"])
    assert browser_events == ["page_view", "page_view", "struct", "struct"]
    for hit in browser["hits"]["hits"]:
        event = hit["_source"]
        assert event["v_tracker"] == "js-4.10.1"
        assert event["useragent"].count("HeadlessChrome/") == 1
        assert event["contexts_com_snowplowanalytics_snowplow_web_page_1"][0]["id"]
    # sent = good + bad: 10 Python (6 good), 6 Node (4 good), 4 browser events (all good),
    # and no document of anything else in either index.
    sent = len(tracked) + len(browser_events)
    good_count = es_client.count(index="good")["count"]
    bad_count = es_client.count(index="bad")["count"]
    assert (sent, good_count, bad_count) == (20, 14, 6)
    assert outcome.unknown_good == len(browser_events)
    assert outcome.unmatched_bad == 0
