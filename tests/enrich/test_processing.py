"""Enrich, payload in, enriched event or bad row out, with exact field values."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from snowplow_analytics_sdk import event_transformer

from snowplow_pipeline import badrows, enriched
from snowplow_pipeline.enrich import processing
from snowplow_pipeline.iglu import schemakeys, validation
from tests.enrich.conftest import (
    contexts,
    get_payload,
    payload_data,
    post_payload,
    sdj,
    unstruct,
    write_schema,
)

CHECKOUT = "iglu:com.acme/checkout/jsonschema/1-0-0"
USER = "iglu:com.acme/user/jsonschema/1-0-0"
EVENT_ID = "c6ef3124-b53a-4b13-a233-0088f79dcbcb"


async def good_event(enricher: processing.Enricher, message: bytes) -> dict[str, str]:
    outcome = await enricher.process(message)
    assert outcome.bad == []
    assert len(outcome.good) == 1
    return enriched.from_tsv(outcome.good[0])


async def bad_row(enricher: processing.Enricher, message: bytes) -> dict[str, Any]:
    outcome = await enricher.process(message)
    assert outcome.good == []
    assert len(outcome.bad) == 1
    return outcome.bad[0]


def b64url(text: str, *, padding: bool) -> str:
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    return encoded if padding else encoded.rstrip("=")


async def test_page_view_fills_page_and_referrer_parts(enricher: processing.Enricher) -> None:
    message = get_payload(
        {
            "e": "pv",
            "eid": EVENT_ID,
            "aid": "shop",
            "p": "web",
            "tv": "py-1.1.0",
            "url": "https://www.acme.test:8443/basket/view?item=7&utm_source=x#top",
            "page": "Basket",
            "refr": "http://search.test/q?term=boots",
            "dtm": "1699999999000",
            "stm": "1699999999500",
            "res": "1920x1080",
            "vp": "800x600",
            "cookie": "1",
            "lang": "en-GB",
            "duid": "d1",
            "vid": "3",
        }
    )

    event = await good_event(enricher, message)

    assert event["app_id"] == "shop"
    assert event["platform"] == "web"
    assert event["event"] == "page_view"
    assert event["event_id"] == EVENT_ID
    assert event["collector_tstamp"] == "2023-11-14 22:13:20.000"
    assert event["dvce_created_tstamp"] == "2023-11-14 22:13:19.000"
    assert event["dvce_sent_tstamp"] == "2023-11-14 22:13:19.500"
    assert event["derived_tstamp"] == "2023-11-14 22:13:19.500"
    assert event["page_urlscheme"] == "https"
    assert event["page_urlhost"] == "www.acme.test"
    assert event["page_urlport"] == "8443"
    assert event["page_urlpath"] == "/basket/view"
    assert event["page_urlquery"] == "item=7&utm_source=x"
    assert event["page_urlfragment"] == "top"
    assert event["page_title"] == "Basket"
    assert event["refr_urlhost"] == "search.test"
    assert event["refr_urlport"] == "80"
    assert event["refr_urlquery"] == "term=boots"
    assert (event["dvce_screenwidth"], event["dvce_screenheight"]) == ("1920", "1080")
    assert (event["br_viewwidth"], event["br_viewheight"]) == ("800", "600")
    assert event["br_cookies"] == "1"
    assert event["domain_sessionidx"] == "3"
    assert event["network_userid"] == "2c2ae7e6-3b5a-4a1f-9d3f-0c39a6a3c001"
    assert event["user_ipaddress"] == "203.0.113.9"
    assert event["useragent"] == "Mozilla/5.0 (test)"
    assert event["v_collector"] == "snowplow-mini-collector-0.1.0-memory"
    assert event["v_etl"].startswith("snowplow-mini-enrich-")
    assert (
        event["event_vendor"],
        event["event_name"],
        event["event_format"],
        event["event_version"],
    ) == ("com.snowplowanalytics.snowplow", "page_view", "jsonschema", "1-0-0")


async def test_true_timestamp_wins_for_derived_tstamp(enricher: processing.Enricher) -> None:
    message = get_payload(
        {
            "e": "pv",
            "p": "web",
            "tv": "t",
            "dtm": "1699999990000",
            "stm": "1699999999000",
            "ttm": "1600000000000",
        }
    )

    event = await good_event(enricher, message)

    assert event["true_tstamp"] == "2020-09-13 12:26:40.000"
    assert event["derived_tstamp"] == "2020-09-13 12:26:40.000"


async def test_device_clock_ahead_keeps_collector_time(enricher: processing.Enricher) -> None:
    message = get_payload(
        {"e": "pv", "p": "web", "tv": "t", "dtm": "1800000000000", "stm": "1700000000000"}
    )

    event = await good_event(enricher, message)

    assert event["derived_tstamp"] == "2023-11-14 22:13:20.000"


async def test_structured_event_maps_se_fields(enricher: processing.Enricher) -> None:
    message = get_payload(
        {
            "e": "se",
            "p": "srv",
            "tv": "t",
            "se_ca": "shop",
            "se_ac": "add",
            "se_la": "boots\tred",
            "se_pr": "size",
            "se_va": "42.5",
        }
    )

    event = await good_event(enricher, message)

    assert event["event"] == "struct"
    assert (
        event["se_category"],
        event["se_action"],
        event["se_label"],
        event["se_property"],
        event["se_value"],
    ) == ("shop", "add", "boots    red", "size", "42.5")
    assert (event["event_vendor"], event["event_name"]) == ("com.google.analytics", "event")


async def test_self_describing_event_with_two_entities_over_post(
    enricher: processing.Enricher,
) -> None:
    body = payload_data(
        {
            "e": "ue",
            "p": "web",
            "tv": "js-4",
            "eid": EVENT_ID,
            "ue_px": b64url(unstruct(sdj(CHECKOUT, {"price": 9.5, "sku": "B-1"})), padding=False),
            "cx": b64url(
                contexts(sdj(USER, {"id": "u1", "plan": "pro"}), sdj(USER, {"id": "u2"})),
                padding=True,
            ),
        }
    )

    event = await good_event(enricher, post_payload(body, query="aid=from-query"))

    assert event["app_id"] == "from-query"
    assert event["event"] == "unstruct"
    assert json.loads(event["unstruct_event"]) == {
        "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        "data": {"schema": CHECKOUT, "data": {"price": 9.5, "sku": "B-1"}},
    }
    assert json.loads(event["contexts"]) == {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1",
        "data": [sdj(USER, {"id": "u1", "plan": "pro"}), sdj(USER, {"id": "u2"})],
    }
    assert (
        event["event_vendor"],
        event["event_name"],
        event["event_format"],
        event["event_version"],
    ) == ("com.acme", "checkout", "jsonschema", "1-0-0")


async def test_post_batch_yields_one_event_per_element(enricher: processing.Enricher) -> None:
    body = payload_data(*({"e": "pv", "p": "web", "tv": "t", "page": f"p{i}"} for i in range(3)))

    outcome = await enricher.process(post_payload(body))

    assert outcome.bad == []
    assert [enriched.from_tsv(line)["page_title"] for line in outcome.good] == ["p0", "p1", "p2"]


async def test_transaction_and_item(enricher: processing.Enricher) -> None:
    body = payload_data(
        {
            "e": "tr",
            "p": "web",
            "tv": "t",
            "tr_id": "o-1",
            "tr_af": "web",
            "tr_tt": "20.50",
            "tr_tx": "1.5",
            "tr_sh": "3",
            "tr_ci": "Leeds",
            "tr_st": "WY",
            "tr_co": "UK",
            "tr_cu": "GBP",
        },
        {
            "e": "ti",
            "p": "web",
            "tv": "t",
            "ti_id": "o-1",
            "ti_sk": "B-1",
            "ti_nm": "Boots",
            "ti_ca": "shoes",
            "ti_pr": "10.25",
            "ti_qu": "2",
            "ti_cu": "GBP",
        },
    )

    outcome = await enricher.process(post_payload(body))

    transaction, item = (enriched.from_tsv(line) for line in outcome.good)
    assert (
        transaction["event"],
        transaction["tr_orderid"],
        transaction["tr_total"],
        transaction["tr_tax"],
        transaction["tr_shipping"],
        transaction["tr_city"],
        transaction["tr_currency"],
    ) == ("transaction", "o-1", "20.50", "1.5", "3", "Leeds", "GBP")
    assert (
        item["event"],
        item["ti_sku"],
        item["ti_name"],
        item["ti_price"],
        item["ti_quantity"],
        item["event_name"],
    ) == ("transaction_item", "B-1", "Boots", "10.25", "2", "transaction_item")


async def test_invalid_entity_becomes_schema_violation_naming_the_property(
    enricher: processing.Enricher,
) -> None:
    message = get_payload(
        {"e": "ue", "p": "web", "tv": "t", "ue_pr": unstruct(sdj(CHECKOUT, {"price": "free"}))}
    )

    row = await bad_row(enricher, message)

    assert row["schema"] == badrows.SCHEMA_VIOLATIONS
    [failure] = row["data"]["failure"]["messages"]
    assert failure["schemaKey"] == CHECKOUT
    assert failure["error"]["error"] == "ValidationError"
    [report] = failure["error"]["dataReports"]
    assert report["path"] == "$.price"
    assert "price" in report["message"]
    assert row["data"]["payload"]["raw"]["parameters"][0] == {"name": "e", "value": "ue"}
    assert row["data"]["payload"]["enriched"]["event"] == "unstruct"


async def test_every_problem_of_an_event_is_reported_at_once(
    enricher: processing.Enricher,
) -> None:
    message = get_payload(
        {
            "e": "pv",
            "p": "web",
            "tv": "t",
            "dtm": "yesterday",
            "eid": "not-a-uuid",
            "co": contexts(sdj(USER, {"id": "far-too-long-an-id"})),
        }
    )

    row = await bad_row(enricher, message)

    atomic, entity = row["data"]["failure"]["messages"]
    assert [r["path"] for r in atomic["error"]["dataReports"]] == ["dtm", "eid"]
    assert entity["schemaKey"] == USER
    assert entity["error"]["dataReports"][0]["path"] == "$.id"


async def test_unknown_schema_is_a_resolution_error(enricher: processing.Enricher) -> None:
    unknown = "iglu:com.acme/nothing_here/jsonschema/1-0-0"
    message = get_payload({"e": "ue", "p": "web", "tv": "t", "ue_pr": unstruct(sdj(unknown, {}))})

    row = await bad_row(enricher, message)

    [failure] = row["data"]["failure"]["messages"]
    assert failure["schemaKey"] == unknown
    assert failure["error"]["error"] == "ResolutionError"
    assert failure["error"]["lookupHistory"][0]["errors"] == [{"error": "NotFound"}]


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        pytest.param({"e": "zz"}, ("e", "enum"), id="unknown-event-type"),
        pytest.param({"p": "web"}, ("e", "required"), id="missing-event-type"),
        pytest.param({"e": "pv", "p": "moon"}, ("p", "enum"), id="unknown-platform"),
        pytest.param({"e": "pv", "tr_tt": "lots"}, ("tr_tt", "type"), id="non-numeric-total"),
        pytest.param({"e": "pv", "res": "big"}, ("res", "format"), id="bad-dimensions"),
        pytest.param({"e": "pv", "f_pdf": "yes"}, ("f_pdf", "enum"), id="bad-boolean"),
        pytest.param({"e": "pv", "aid": "x" * 300}, ("app_id", "maxLength"), id="too-long"),
    ],
)
async def test_bad_parameter_is_an_atomic_schema_violation(
    enricher: processing.Enricher, parameters: dict[str, str], expected: tuple[str, str]
) -> None:
    row = await bad_row(enricher, get_payload({"tv": "t", **parameters}))

    [failure] = row["data"]["failure"]["messages"]
    assert failure["schemaKey"] == "iglu:com.snowplowanalytics.snowplow/atomic/jsonschema/1-0-0"
    [report] = failure["error"]["dataReports"]
    assert (report["path"], report["keyword"]) == expected


async def test_broken_base64_names_the_parameter(enricher: processing.Enricher) -> None:
    row = await bad_row(
        enricher, get_payload({"e": "ue", "p": "web", "tv": "t", "ue_px": "e30$$$"})
    )

    [failure] = row["data"]["failure"]["messages"]
    assert failure["field"] == "ue_px"
    assert "base64" in failure["error"]


async def test_wrong_wrapper_is_a_criterion_mismatch(enricher: processing.Enricher) -> None:
    row = await bad_row(
        enricher,
        get_payload(
            {"e": "ue", "p": "web", "tv": "t", "ue_pr": json.dumps(sdj(USER, {"id": "x"}))}
        ),
    )

    [failure] = row["data"]["failure"]["messages"]
    assert failure == {
        "schemaKey": USER,
        "schemaCriterion": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-*-*",
    }


@pytest.mark.parametrize(
    ("message_kwargs", "field"),
    [
        pytest.param({"body": "{not json"}, "body", id="non-json-body"),
        pytest.param(
            {"body": payload_data({"e": "pv"}), "content_type": "text/plain"},
            "contentType",
            id="wrong-content-type",
        ),
        pytest.param(
            {"body": {"schema": "iglu:com.acme/other/jsonschema/1-0-0", "data": []}},
            None,
            id="not-payload-data",
        ),
        pytest.param(
            {"body": payload_data({"e": "pv", "tv": 3})},
            "body.data[0].tv",
            id="non-string-parameter",
        ),
    ],
)
async def test_broken_post_is_a_tracker_protocol_violation(
    enricher: processing.Enricher, message_kwargs: dict[str, Any], field: str | None
) -> None:
    row = await bad_row(enricher, post_payload(**message_kwargs))

    assert row["schema"] == badrows.TRACKER_PROTOCOL_VIOLATIONS
    [failure] = row["data"]["failure"]["messages"]
    assert failure.get("field") == field
    assert row["data"]["failure"]["vendor"] == "com.snowplowanalytics.snowplow"
    assert row["data"]["payload"]["contentType"] is not None


async def test_empty_pixel_request_is_a_tracker_protocol_violation(
    enricher: processing.Enricher,
) -> None:
    row = await bad_row(enricher, get_payload(""))

    assert row["schema"] == badrows.TRACKER_PROTOCOL_VIOLATIONS
    assert row["data"]["failure"]["messages"][0]["field"] == "querystring"


async def test_unknown_vendor_is_an_adapter_failure(enricher: processing.Enricher) -> None:
    row = await bad_row(enricher, get_payload({"e": "pv"}, path="/com.acme/v9"))

    assert row["schema"] == badrows.ADAPTER_FAILURES
    assert (row["data"]["failure"]["vendor"], row["data"]["failure"]["version"]) == (
        "com.acme",
        "v9",
    )


async def test_unreadable_record_is_a_collector_payload_format_violation(
    enricher: processing.Enricher,
) -> None:
    row = await bad_row(enricher, b"\x00\x01 definitely not thrift")

    assert row["schema"] == badrows.COLLECTOR_PAYLOAD_FORMAT_VIOLATION
    assert row["data"]["failure"]["loader"] == "thrift"
    assert base64.b64decode(row["data"]["payload"]) == b"\x00\x01 definitely not thrift"


async def test_undecodable_query_string_is_a_format_violation(
    enricher: processing.Enricher,
) -> None:
    row = await bad_row(enricher, get_payload("e=pv&page=%ff%fe"))

    assert row["schema"] == badrows.COLLECTOR_PAYLOAD_FORMAT_VIOLATION
    assert row["data"]["failure"]["message"]["field"] == "querystring"


async def test_client_ip_comes_from_forwarded_headers_unless_given(
    enricher: processing.Enricher,
) -> None:
    forwarded = ["X-Forwarded-For: 198.51.100.7, 10.0.0.1"]

    from_header = await good_event(enricher, get_payload({"e": "pv", "tv": "t"}, headers=forwarded))
    from_parameter = await good_event(
        enricher, get_payload({"e": "pv", "tv": "t", "ip": "192.0.2.1"}, headers=forwarded)
    )

    assert from_header["user_ipaddress"] == "198.51.100.7"
    assert from_parameter["user_ipaddress"] == "192.0.2.1"


async def test_tnuid_wins_over_the_cookie(enricher: processing.Enricher) -> None:
    event = await good_event(enricher, get_payload({"e": "pv", "tv": "t", "tnuid": "mine"}))

    assert event["network_userid"] == "mine"


async def test_page_url_falls_back_to_the_referer_header(enricher: processing.Enricher) -> None:
    event = await good_event(
        enricher, get_payload({"e": "pv", "tv": "t"}, referer="http://shop.test/a?b=c")
    )

    assert (event["page_url"], event["page_urlpath"], event["page_urlquery"]) == (
        "http://shop.test/a?b=c",
        "/a",
        "b=c",
    )


async def test_iglu_webhook_becomes_a_self_describing_event(
    enricher: processing.Enricher,
) -> None:
    message = get_payload(
        {"schema": USER, "id": "u9", "plan": "free"}, path="/com.snowplowanalytics.iglu/v1"
    )

    event = await good_event(enricher, message)

    assert json.loads(event["unstruct_event"])["data"] == sdj(USER, {"id": "u9", "plan": "free"})
    assert (event["event"], event["platform"], event["v_tracker"]) == (
        "unstruct",
        "srv",
        "com.snowplowanalytics.iglu-v1",
    )
    assert (event["event_vendor"], event["event_name"]) == ("com.acme", "user")


async def test_a_broken_schema_makes_a_bad_row_not_a_crash(
    enricher: processing.Enricher, schema_folder: Path
) -> None:
    broken = {
        "self": {
            "vendor": "com.acme",
            "name": "broken",
            "format": "jsonschema",
            "version": "1-0-0",
        },
        "type": "no-such-type",
    }
    write_schema(schema_folder, broken)
    uri = "iglu:com.acme/broken/jsonschema/1-0-0"

    row = await bad_row(
        enricher, get_payload({"e": "ue", "p": "web", "tv": "t", "ue_pr": unstruct(sdj(uri, {}))})
    )

    [failure] = row["data"]["failure"]["messages"]
    assert failure["schemaKey"] == uri
    assert failure["error"]["error"] == "ValidationError"
    assert failure["error"]["schemaIssues"]


BAD_INPUTS = {
    "schema-violation": get_payload(
        {"e": "ue", "p": "web", "tv": "t", "ue_pr": unstruct(sdj(CHECKOUT, {"price": "x"}))}
    ),
    "atomic-violation": get_payload({"e": "zz", "tv": "t"}),
    "tracker-protocol": post_payload("{oops"),
    "adapter-failure": get_payload({"e": "pv"}, path="/com.acme/v9"),
    "format-violation": b"garbage",
}


@pytest.mark.parametrize("name", BAD_INPUTS)
async def test_bad_rows_validate_against_the_bad_row_schemas(
    enricher: processing.Enricher, name: str
) -> None:
    row = await bad_row(enricher, BAD_INPUTS[name])

    key = schemakeys.SchemaKey.parse(row["schema"])
    schema = await enricher.resolver.lookup(key)
    assert validation.validate(key, schema, row["data"]) == []
    assert badrows.describe(row)[0]


GOOD_INPUTS = {
    "page-view": get_payload(
        {
            "e": "pv",
            "p": "web",
            "tv": "t",
            "url": "http://a.test/",
            "res": "1x2",
            "cookie": "1",
            "dtm": "1700000000000",
        }
    ),
    "struct": get_payload({"e": "se", "tv": "t", "se_ca": "c", "se_ac": "a", "se_va": "2"}),
    "unstruct-with-entities": get_payload(
        {
            "e": "ue",
            "tv": "t",
            "ue_pr": unstruct(sdj(CHECKOUT, {"price": 1})),
            "co": contexts(sdj(USER, {"id": "a"}), sdj(USER, {"id": "b"})),
        }
    ),
    "transaction-item": get_payload(
        {"e": "ti", "tv": "t", "ti_id": "o", "ti_pr": "2.5", "ti_qu": "3"}
    ),
}


@pytest.mark.parametrize("name", GOOD_INPUTS)
async def test_good_events_read_the_same_in_the_analytics_sdk(
    enricher: processing.Enricher, name: str
) -> None:
    outcome = await enricher.process(GOOD_INPUTS[name])

    [line] = outcome.good
    theirs = event_transformer.transform(line)
    if "se_value" in theirs:  # the Python SDK keeps it a string; canonically a number
        theirs["se_value"] = float(theirs["se_value"])
    assert theirs == enriched.to_json(enriched.from_tsv(line))


DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("parameters", "field", "text"),
    [
        pytest.param({"e": "pv", "dtm": "\u00b2"}, "dtm", "milliseconds", id="superscript-digit"),
        pytest.param({"e": "pv", "res": "\u0661x\u0662"}, "res", "width", id="arabic-digits"),
        pytest.param({"e": "pv", "se_va": "1_000.5"}, "se_va", "decimal", id="underscored"),
        pytest.param({"e": "pv", "tid": "\uff11"}, "tid", "integer", id="full-width-digit"),
        pytest.param({"e": "ue"}, "ue_pr", "self-describing event", id="unstruct-without-ue"),
    ],
)
async def test_numbers_only_in_ascii_digits_and_ue_needs_its_event(
    enricher: processing.Enricher, parameters: dict[str, str], field: str, text: str
) -> None:
    row = await bad_row(enricher, get_payload({"tv": "t", "p": "web", **parameters}))

    [failure] = row["data"]["failure"]["messages"]
    [report] = failure["error"]["dataReports"]
    assert report["path"] == field
    assert text in report["message"]


@pytest.mark.parametrize(
    ("ue_pr", "expected"),
    [
        pytest.param('{"schema": ' + DEEP + "}", "nested too deeply", id="deep-nesting"),
        pytest.param('{"x": NaN}', "NaN is not a JSON number", id="nan"),
        pytest.param('{"x": 1e999}', "too large", id="infinite-number"),
        pytest.param('{"x": "a\\ud800b"}', "unpaired UTF-16 surrogate", id="lone-surrogate"),
    ],
)
async def test_json_that_cannot_be_written_back_is_a_bad_row(
    enricher: processing.Enricher, ue_pr: str, expected: str
) -> None:
    row = await bad_row(enricher, get_payload({"e": "ue", "p": "web", "tv": "t", "ue_pr": ue_pr}))

    [failure] = row["data"]["failure"]["messages"]
    assert failure["field"] == "ue_pr"
    assert expected in failure["error"]


async def test_deeply_nested_post_body_is_a_tracker_protocol_violation(
    enricher: processing.Enricher,
) -> None:
    row = await bad_row(enricher, post_payload(DEEP))

    assert row["schema"] == badrows.TRACKER_PROTOCOL_VIOLATIONS
    assert "nested too deeply" in row["data"]["failure"]["messages"][0]["error"]


async def test_schema_key_too_long_for_a_file_name_is_not_a_crash(
    enricher: processing.Enricher,
) -> None:
    uri = "iglu:com.acme/" + "n" * 300 + "/jsonschema/1-0-0"

    row = await bad_row(
        enricher, get_payload({"e": "ue", "p": "web", "tv": "t", "ue_pr": unstruct(sdj(uri, {}))})
    )

    [failure] = row["data"]["failure"]["messages"]
    assert failure["error"]["error"] == "InvalidIgluUri"


async def test_tab_in_forwarded_for_does_not_break_the_line(
    enricher: processing.Enricher,
) -> None:
    event = await good_event(
        enricher, get_payload({"e": "pv", "tv": "t"}, headers=["X-Forwarded-For: 1.2.3.4\tevil"])
    )

    assert event["user_ipaddress"] == "1.2.3.4    evil"


@pytest.mark.parametrize("name", ["nuid", "tnuid"])
async def test_empty_nuid_parameter_leaves_the_collectors_id(
    enricher: processing.Enricher, name: str
) -> None:
    payload = get_payload(
        {"e": "pv", "tv": "t", name: ""}, nuid="c0ffee00-0000-4000-8000-000000000001"
    )

    event = await good_event(enricher, payload)

    assert event["network_userid"] == "c0ffee00-0000-4000-8000-000000000001"


async def test_nuid_parameter_wins_over_the_collectors_cookie(
    enricher: processing.Enricher,
) -> None:
    event = await good_event(enricher, get_payload({"e": "pv", "tv": "t", "nuid": "server-id"}))

    assert event["network_userid"] == "server-id"
