"""The sinks against a real Elasticsearch: mappings, documents, dedupe, routed rejections."""

from __future__ import annotations

import json
from typing import Any

import pytest

from snowplow_pipeline import badrows, topics
from tests.sink import events
from tests.sink.conftest import RunningSink

pytestmark = pytest.mark.elasticsearch

EVENT_ID = "7f1b8a43-2a35-4a47-9a4c-3c1d41d2f2a0"


async def field_types(sink: RunningSink) -> dict[str, str]:
    """Field path -> mapped type, for every field of the sink's index."""
    answer = await sink.client.indices.get_mapping(index=sink.index)
    found: dict[str, str] = {}

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, mapping in properties.items():
            if "properties" in mapping:
                walk(mapping["properties"], f"{prefix}{name}.")
            else:
                found[f"{prefix}{name}"] = mapping["type"]

    walk(answer[sink.index]["mappings"]["properties"], "")
    return found


async def test_atomic_and_entity_fields_get_their_types_in_the_good_index(run_sink: Any) -> None:
    sink = await run_sink("good")
    line = events.enriched_line(
        EVENT_ID,
        contexts=events.contexts(
            events.sdj(
                "iglu:com.acme/cart/jsonschema/1-0-0",
                {"opened": "2024-05-01T09:00:00Z", "items": 3, "total": 9.5, "coupon": "SPRING"},
            )
        ),
    )

    await sink.publish(topics.ENRICHED_EVENTS, [line])
    await sink.settle()

    types = await field_types(sink)
    assert types["collector_tstamp"] == "date"
    assert types["derived_tstamp"] == "date"
    assert types["domain_sessionidx"] == "long"
    assert types["se_value"] == "double"
    assert types["br_cookies"] == "boolean"
    assert types["geo_location"] == "geo_point"
    assert types["app_id"] == "keyword"
    assert types["contexts_com_acme_cart_1.opened"] == "date"
    assert types["contexts_com_acme_cart_1.items"] == "long"
    assert types["contexts_com_acme_cart_1.total"] == "float"
    assert types["contexts_com_acme_cart_1.coupon"] == "keyword"
    near_berlin = {"geo_distance": {"distance": "1km", "geo_location": "52.52,13.40"}}
    assert await sink.count(query=near_berlin) == 1
    assert await sink.count(query={"range": {"collector_tstamp": {"gte": "2024-05-01"}}}) == 1


async def test_entities_are_arrays_that_can_be_searched_by_their_fields(run_sink: Any) -> None:
    sink = await run_sink("good")
    line = events.enriched_line(
        EVENT_ID,
        contexts=events.contexts(
            events.sdj("iglu:com.acme/cartItem/jsonschema/1-0-0", {"sku": "apple"}),
            events.sdj("iglu:com.acme/cartItem/jsonschema/1-1-0", {"sku": "pear"}),
        ),
        unstruct_event=events.unstruct(
            events.sdj("iglu:com.acme/checkout/jsonschema/2-0-0", {"step": 2})
        ),
    )

    await sink.publish(topics.ENRICHED_EVENTS, [line])
    await sink.settle()

    document = await sink.client.get(index=sink.index, id=EVENT_ID)
    assert document["_source"]["contexts_com_acme_cart_item_1"] == [
        {"sku": "apple"},
        {"sku": "pear"},
    ]
    assert document["_source"]["unstruct_event_com_acme_checkout_2"] == {"step": 2}
    assert await sink.count(query={"term": {"contexts_com_acme_cart_item_1.sku": "pear"}}) == 1


async def test_redelivered_event_overwrites_itself_instead_of_duplicating(run_sink: Any) -> None:
    sink = await run_sink("good")
    ids = events.event_ids(3)
    lines = [events.enriched_line(event_id) for event_id in ids]

    await sink.publish(topics.ENRICHED_EVENTS, lines + lines + [lines[0]])
    await sink.settle()

    assert await sink.count() == 3
    assert sorted(s["event_id"] for s in await sink.sources()) == sorted(ids)
    assert sink.failures.published == []


async def test_mapping_conflict_is_routed_with_elasticsearchs_reason(run_sink: Any) -> None:
    sink = await run_sink("good")
    first, second = events.event_ids(2)
    entity = "iglu:com.acme/cart/jsonschema/1-0-0"
    good_line = events.enriched_line(
        first, contexts=events.contexts(events.sdj(entity, {"items": 3}))
    )
    clashing_line = events.enriched_line(
        second, contexts=events.contexts(events.sdj(entity, {"items": "three"}))
    )

    await sink.publish(topics.ENRICHED_EVENTS, [good_line])
    await sink.settle()
    await sink.publish(topics.ENRICHED_EVENTS, [clashing_line])
    await sink.settle()

    assert [s["event_id"] for s in await sink.sources()] == [first]
    [(topic, message)] = sink.failures.published
    row = badrows.parse(message)
    assert topic == topics.BAD_ELASTICSEARCH_EVENTS
    assert row["schema"] == badrows.GENERIC_ERROR
    assert row["data"]["payload"] == clashing_line.decode()
    [error] = row["data"]["failure"]["errors"]
    assert error.startswith(f"Elasticsearch rejected the document for index {sink.index}: ")
    assert "document_parsing_exception" in error
    assert "failed to parse field [contexts_com_acme_cart_1.items] of type [long]" in error
    assert sink.messages(topics.ENRICHED_EVENTS, "indexed") == 1
    assert sink.messages(topics.ENRICHED_EVENTS, "routed") == 1


async def test_event_past_the_field_limit_is_routed_with_the_reason(run_sink: Any) -> None:
    sink = await run_sink("good", index={"total_fields_limit": 200})
    wide = {f"field_{n}": n for n in range(150)}
    line = events.enriched_line(
        EVENT_ID,
        unstruct_event=events.unstruct(events.sdj("iglu:com.acme/wide/jsonschema/1-0-0", wide)),
    )

    await sink.publish(topics.ENRICHED_EVENTS, [line])
    await sink.settle()

    assert await sink.count() == 0
    [row] = sink.failures.bad_rows()
    [error] = row["data"]["failure"]["errors"]
    assert "Limit of total fields [200] has been exceeded" in error
    assert row["data"]["payload"] == line.decode()


async def test_very_long_strings_are_kept_in_the_document_but_not_indexed(run_sink: Any) -> None:
    sink = await run_sink("good")
    # Lucene refuses terms over 32 766 bytes; "€" is 3 bytes in UTF-8, one Java character.
    long_title = "€" * 10_923
    longest_indexed = "€" * 10_922
    emoji = "😀" * 5461  # 21 844 bytes but 10 922 Java characters: still indexed
    line = events.enriched_line(
        EVENT_ID, page_title=long_title, page_referrer=longest_indexed, user_id=emoji
    )

    await sink.publish(topics.ENRICHED_EVENTS, [line])
    await sink.settle()

    document = await sink.client.get(index=sink.index, id=EVENT_ID)
    assert document["_source"]["page_title"] == long_title
    assert await sink.count(query={"term": {"_ignored": "page_title"}}) == 1
    assert await sink.count(query={"exists": {"field": "page_title"}}) == 0
    assert await sink.count(query={"term": {"page_referrer": longest_indexed}}) == 1
    assert await sink.count(query={"term": {"user_id": emoji}}) == 1
    assert sink.failures.published == []


async def test_unreadable_line_goes_to_the_failure_topic_as_loader_parsing_error(
    run_sink: Any,
) -> None:
    sink = await run_sink("good")

    await sink.publish(topics.ENRICHED_EVENTS, [b"not\tan\tenriched\tevent"])
    await sink.settle()

    assert await sink.count() == 0
    [row] = sink.failures.bad_rows()
    assert row["schema"] == badrows.LOADER_PARSING_ERROR
    assert row["data"]["payload"] == "not\tan\tenriched\tevent"


def bad_rows_of_every_kind() -> list[dict[str, Any]]:
    raw = {"vendor": "com.snowplowanalytics.snowplow", "version": "tp2", "parameters": []}
    return [
        badrows.generic_error(component="collector", errors=["bad query"], payload="a=%"),
        badrows.size_violation(
            component="collector",
            maximum_allowed_bytes=1000,
            actual_bytes=2000,
            expectation="a smaller payload",
            payload="x" * 50,
        ),
        badrows.collector_payload_format_violation(
            component="enrich", message={"error": "not thrift"}, payload="AAAA"
        ),
        badrows.tracker_protocol_violations(
            component="enrich",
            vendor="com.snowplowanalytics.snowplow",
            version="tp2",
            messages=[{"field": "e", "value": None, "expectation": "an event type"}],
            payload={"vendor": "com.snowplowanalytics.snowplow", "body": "{}"},
        ),
        badrows.schema_violations(
            component="enrich",
            messages=[{"schemaKey": "iglu:com.acme/x/jsonschema/1-0-0", "error": {"x": 1}}],
            enriched={"event_id": EVENT_ID, "app_id": "shop"},
            raw={**raw, "parameters": [{"name": "e", "value": "ue"}]},
        ),
        badrows.loader_parsing_error(component="sink", errors=["too short"], payload="a\tb"),
    ]


async def test_bad_rows_of_every_kind_land_side_by_side_in_the_bad_index(run_sink: Any) -> None:
    sink = await run_sink("bad")
    rows = bad_rows_of_every_kind()
    messages = [badrows.serialize(row) for row in rows]

    await sink.publish(topics.BAD_RAW_EVENTS, messages[:2])
    await sink.publish(topics.BAD_ENRICHED_EVENTS, messages[2:])
    await sink.settle()

    assert sink.failures.published == []
    assert sorted(s["schema"] for s in await sink.sources()) == sorted(r["schema"] for r in rows)
    types = await field_types(sink)
    assert types["data.failure.timestamp"] == "date"
    assert types["data.payload_str"] == "keyword"
    assert types["data.payload.raw.parameters"] == "keyword"
    parameters = json.dumps([{"name": "e", "value": "ue"}], separators=(",", ":"))
    assert await sink.count(query={"term": {"data.payload.raw.parameters": parameters}}) == 1


async def test_redelivered_bad_row_is_indexed_once(run_sink: Any) -> None:
    sink = await run_sink("bad")
    message = badrows.serialize(bad_rows_of_every_kind()[0])

    await sink.publish(topics.BAD_ENRICHED_EVENTS, [message, message])
    await sink.settle()

    assert await sink.count() == 1
