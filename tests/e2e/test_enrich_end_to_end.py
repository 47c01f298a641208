"""Enrich end to end: the Python tracker → collector → nsqd → enrich → nsqd, every outcome.

Every event type the Python tracker sends comes out as an enriched event with its fields and
the configured enrichments applied, and every kind of failure comes out as the bad row of its
exact type, with the message a user needs.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from snowplow_analytics_sdk import event_transformer
from snowplow_tracker import (
    Emitter,
    PagePing,
    PageView,
    SelfDescribing,
    SelfDescribingJson,
    StructuredEvent,
    Subject,
    Tracker,
)

from snowplow_pipeline import badrows, nsq, topics
from tests.e2e.conftest import Pipeline

pytestmark = [pytest.mark.nsq, pytest.mark.tracker]

CHECKOUT = "iglu:com.acme/checkout/jsonschema/1-0-0"
USER = "iglu:com.acme/user/jsonschema/1-0-0"
DEVICE = "iglu:com.acme/device/jsonschema/1-0-0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def send_with_python_tracker(pipeline: Pipeline, method: str) -> None:
    emitter = Emitter(
        pipeline.collector_url.removeprefix("http://"), protocol="http", method=method, batch_size=1
    )
    subject = Subject().set_platform("web").set_useragent(CHROME).set_ip_address("198.51.100.77")
    tracker = Tracker(namespace="e2e", emitters=emitter, app_id=f"shop-{method}", subject=subject)
    tracker.track(
        PageView(page_url="https://shop.test/?utm_source=news&utm_medium=email", page_title="Home")
    )
    tracker.track(PagePing(page_url="https://shop.test/", min_x=0, max_x=10, min_y=5, max_y=500))
    tracker.track(StructuredEvent(category="shop", action="add", label="boots", value=2.0))
    tracker.track(
        SelfDescribing(
            SelfDescribingJson(CHECKOUT, {"price": 9.5, "sku": "B-1"}),
            context=[SelfDescribingJson(USER, {"id": "u1"})],
        )
    )
    # The tracker's only way to send transactions; it warns that it will be replaced.
    tracker.track_ecommerce_transaction(
        order_id="o-1",
        total_value=20.5,
        currency="EUR",
        items=[{"sku": "B-1", "price": 10.25, "quantity": 2, "name": "Boots"}],
    )
    tracker.flush()


@pytest.mark.parametrize("method", ["get", "post"])
async def test_every_event_type_comes_out_enriched(pipeline: Pipeline, method: str) -> None:
    await asyncio.to_thread(send_with_python_tracker, pipeline, method)

    await pipeline.wait_for(good=6, bad=0)

    events = {event["event"]: event for event in pipeline.good()}
    assert sorted(events) == [
        "page_ping",
        "page_view",
        "struct",
        "transaction",
        "transaction_item",
        "unstruct",
    ]
    page_view = events["page_view"]
    assert (page_view["app_id"], page_view["platform"], page_view["page_urlhost"]) == (
        f"shop-{method}",
        "web",
        "shop.test",
    )
    assert (page_view["mkt_source"], page_view["mkt_medium"]) == ("news", "email")
    assert page_view["user_ipaddress"] == "198.51.100.x"  # anon_ip, one octet
    ua = json.loads(page_view["derived_contexts"])["data"][0]
    assert ua["schema"] == "iglu:com.snowplowanalytics.snowplow/ua_parser_context/jsonschema/1-0-0"
    assert ua["data"]["useragentFamily"] == "Chrome"
    ping = events["page_ping"]
    assert (ping["pp_xoffset_max"], ping["pp_yoffset_min"], ping["pp_yoffset_max"]) == (
        "10",
        "5",
        "500",
    )
    assert (events["struct"]["se_category"], events["struct"]["se_value"]) == ("shop", "2.0")
    assert json.loads(events["unstruct"]["unstruct_event"])["data"]["data"] == {
        "price": 9.5,
        "sku": "B-1",
    }
    assert (
        events["transaction"]["tr_orderid"],
        events["transaction"]["tr_total"],
        events["transaction"]["tr_currency"],
    ) == ("o-1", "20.5", "EUR")
    assert (events["transaction_item"]["ti_sku"], events["transaction_item"]["ti_quantity"]) == (
        "B-1",
        "2",
    )
    for message in pipeline.received[topics.ENRICHED_EVENTS]:
        assert event_transformer.transform(message.decode())["event_id"]


def post(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


def failure_of(row: dict) -> dict:
    return row["data"]["failure"]


async def test_every_kind_of_failure_comes_out_as_its_bad_row(pipeline: Pipeline) -> None:
    url = pipeline.collector_url
    invalid = json.dumps(
        {
            "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
            "data": {"schema": CHECKOUT, "data": {"price": "free", "sku": "x"}},
        }
    )
    device = json.dumps(
        {
            "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
            "data": [{"schema": DEVICE, "data": {"model": "phone"}}],
        }
    )
    oversized = json.dumps(
        {
            "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
            "data": [{"e": "pv", "p": "web", "tv": "t", "page": "x" * 1_200_000}],
        }
    ).encode()
    answers = await asyncio.to_thread(
        lambda: [
            get(f"{url}/i?e=ue&p=web&tv=t&ue_pr={urllib.request.quote(invalid)}"),
            post(f"{url}/com.snowplowanalytics.snowplow/tp2", b"e=pv", "text/plain"),
            get(f"{url}/com.acme/v9?e=pv"),
            get(f"{url}/i?e=pv&p=web&tv=t&co={urllib.request.quote(device)}"),
            post(f"{url}/com.snowplowanalytics.snowplow/tp2", oversized, "application/json"),
        ]
    )
    async with nsq.NsqPublisher(http_address=pipeline.nsqd.http_address) as publisher:
        await publisher.publish(topics.RAW_EVENTS, [b"not a collector payload"])

    await pipeline.wait_for(good=0, bad=6)

    assert answers == [200] * 5
    rows = {row["schema"].split("/")[1]: row for row in pipeline.bad()}
    assert sorted(rows) == [
        "adapter_failures",
        "collector_payload_format_violation",
        "enrichment_failures",
        "schema_violations",
        "size_violation",
        "tracker_protocol_violations",
    ]
    [violation] = failure_of(rows["schema_violations"])["messages"]
    assert violation["schemaKey"] == CHECKOUT
    assert violation["error"]["dataReports"][0]["path"] == "$.price"
    assert rows["schema_violations"]["schema"] == badrows.SCHEMA_VIOLATIONS
    [protocol] = failure_of(rows["tracker_protocol_violations"])["messages"]
    assert protocol["field"] == "contentType"
    assert rows["tracker_protocol_violations"]["schema"] == badrows.TRACKER_PROTOCOL_VIOLATIONS
    assert (
        failure_of(rows["adapter_failures"])["vendor"],
        failure_of(rows["adapter_failures"])["version"],
    ) == ("com.acme", "v9")
    assert rows["adapter_failures"]["schema"] == badrows.ADAPTER_FAILURES
    [enrichment] = failure_of(rows["enrichment_failures"])["messages"]
    assert enrichment["enrichment"]["identifier"] == "pii_enrichment_config"
    assert rows["enrichment_failures"]["schema"] == badrows.ENRICHMENT_FAILURES
    size = failure_of(rows["size_violation"])
    assert size["maximumAllowedSizeBytes"] == 1_000_000
    assert size["actualSizeBytes"] > 1_200_000
    assert rows["size_violation"]["data"]["processor"]["artifact"] == "snowplow-mini-collector"
    assert rows["collector_payload_format_violation"]["schema"] == (
        badrows.COLLECTOR_PAYLOAD_FORMAT_VIOLATION
    )
    for row in rows.values():
        assert badrows.describe(row)[0]
