"""Messages to documents: enriched events, bad rows, and what happens to unreadable ones."""

from __future__ import annotations

import json

import pytest

from snowplow_pipeline import badrows
from snowplow_pipeline.sink import documents
from tests.sink import events

EVENT_ID = "c6ef3124-b53a-4b13-a233-0088f79dcbcb"


def test_enriched_line_becomes_typed_sdk_json_with_event_id_as_document_id() -> None:
    line = events.enriched_line(EVENT_ID)

    document = documents.from_enriched(line, index="good")

    source = json.loads(document.source)
    assert (document.index, document.id, document.message) == ("good", EVENT_ID, line)
    assert source["collector_tstamp"] == "2024-05-01T10:00:00.123Z"
    assert source["domain_sessionidx"] == 3
    assert source["se_value"] == 2.5
    assert source["br_cookies"] is True
    assert source["dvce_ismobile"] is False
    assert source["geo_location"] == "52.52,13.405"


def test_entities_become_arrays_keyed_by_vendor_name_and_model() -> None:
    line = events.enriched_line(
        EVENT_ID,
        contexts=events.contexts(
            events.sdj("iglu:com.acme/cartItem/jsonschema/1-0-0", {"sku": "a"}),
            events.sdj("iglu:com.acme/cartItem/jsonschema/1-2-0", {"sku": "b"}),
        ),
        unstruct_event=events.unstruct(
            events.sdj("iglu:com.acme-shop/add_to_cart/jsonschema/2-0-0", {"quantity": 2})
        ),
    )

    source = json.loads(documents.from_enriched(line, index="good").source)

    assert source["contexts_com_acme_cart_item_1"] == [{"sku": "a"}, {"sku": "b"}]
    assert source["unstruct_event_com_acme_shop_add_to_cart_2"] == {"quantity": 2}
    assert "contexts" not in source and "unstruct_event" not in source


@pytest.mark.parametrize(
    ("line", "expected_error"),
    [
        pytest.param(
            b"only\tthree\tfields", "expected 131 tab-separated fields, got 3", id="short"
        ),
        pytest.param(
            events.enriched_line("not-a-uuid"), "event_id: 'not-a-uuid' is not a UUID", id="id"
        ),
        pytest.param(
            events.enriched_line(EVENT_ID, domain_sessionidx="three"),
            "domain_sessionidx: cannot read 'three'",
            id="type",
        ),
    ],
)
def test_unreadable_enriched_line_becomes_loader_parsing_error(
    line: bytes, expected_error: str
) -> None:
    with pytest.raises(documents.UnreadableMessageError) as caught:
        documents.from_enriched(line, index="good")

    row = caught.value.bad_row
    assert row["schema"] == badrows.LOADER_PARSING_ERROR
    assert row["data"]["payload"] == line.decode()
    assert row["data"]["processor"]["artifact"] == "snowplow-mini-sink"
    messages = [error["message"] for error in row["data"]["failure"]["errors"]]
    assert any(message.startswith(expected_error) for message in messages), messages


def test_bad_rows_of_different_types_never_give_one_field_two_types() -> None:
    generic = badrows.generic_error(component="collector", errors=["bad query"], payload="q=%")
    parsing = badrows.loader_parsing_error(component="sink", errors=["x"], payload="line")
    violation = badrows.tracker_protocol_violations(
        component="enrich",
        vendor="com.snowplowanalytics.snowplow",
        version="tp2",
        messages=[{"field": "tv", "value": {"nested": 1}, "expectation": "a string"}],
        payload={"querystring": [{"name": "e", "value": "pv"}], "body": None},
    )

    flat = [
        json.loads(documents.from_bad_row(badrows.serialize(row), index="bad").source)
        for row in (generic, parsing, violation)
    ]

    assert flat[0]["data"]["payload_str"] == "q=%"
    assert flat[0]["data"]["failure"]["errors_list"] == ["bad query"]
    assert flat[1]["data"]["failure"]["errors"] == [{"type": "InvalidValue", "message_str": "x"}]
    assert flat[2]["data"]["failure"]["messages"][0]["value"] == '{"nested":1}'
    assert flat[2]["data"]["payload"]["querystring"] == [{"name": "e", "value": "pv"}]
    assert "payload" not in flat[0]["data"] and "payload_str" not in flat[2]["data"]


def test_json_that_is_not_a_bad_row_passes_through_unchanged() -> None:
    row = {"schema": "iglu:com.acme/thing/jsonschema/1-0-0", "data": {"payload": "kept"}}

    document = documents.from_bad_row(json.dumps(row).encode(), index="bad")

    assert json.loads(document.source) == row


def test_bad_row_id_is_the_same_for_a_redelivered_message_and_differs_between_rows() -> None:
    first = badrows.serialize(badrows.generic_error(component="c", errors=["a"], payload="p"))
    second = badrows.serialize(badrows.generic_error(component="c", errors=["b"], payload="p"))

    ids = [documents.from_bad_row(m, index="bad").id for m in (first, first, second)]

    assert ids[0] == ids[1] != ids[2]


def test_message_on_a_bad_topic_that_is_not_a_bad_row_becomes_generic_error() -> None:
    with pytest.raises(documents.UnreadableMessageError) as caught:
        documents.from_bad_row(b"plain text", index="bad")

    row = caught.value.bad_row
    assert row["schema"] == badrows.GENERIC_ERROR
    assert row["data"]["payload"] == "plain text"
    assert row["data"]["failure"]["errors"][0].startswith("not a self-describing JSON bad row")


def test_rejected_document_becomes_generic_error_with_the_reason_and_the_original_message() -> None:
    document = documents.from_enriched(events.enriched_line(EVENT_ID), index="good")

    row = documents.rejected(document, reason="document_parsing_exception: failed to parse")

    assert row["schema"] == badrows.GENERIC_ERROR
    assert row["data"]["payload"] == document.message.decode()
    assert row["data"]["failure"]["errors"] == [
        "Elasticsearch rejected the document for index good: "
        "document_parsing_exception: failed to parse"
    ]
