"""The local Mini as a user runs it: a real process, real Snowplow trackers, exact results."""

from __future__ import annotations

import datetime
import http.cookiejar
import json
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from snowplow_analytics_sdk import event_transformer
from snowplow_tracker import (
    Emitter,
    PageView,
    SelfDescribing,
    SelfDescribingJson,
    StructuredEvent,
    Subject,
    Tracker,
)

from snowplow_pipeline import enriched
from tests.local.conftest import (
    LocalMini,
    free_port,
    http_repository,
    resolver_config,
    run_local_mini,
    snowplow_mini_command,
)

pytestmark = pytest.mark.tracker

CHECKOUT = "iglu:com.acme/checkout/jsonschema/1-0-0"
USER = "iglu:com.acme/user/jsonschema/1-0-0"
DEVICE = "iglu:com.acme/device/jsonschema/1-0-0"
COOKIE_NUID = "5d79f6a0-3c2b-4c7e-9a11-1f4d1f9e0b42"


def tracker_for(mini: LocalMini, *, method: str) -> Tracker:
    """A Python tracker sending one request per event, carrying an ``sp`` cookie."""
    session = requests.Session()
    session.cookies.set("sp", COOKIE_NUID, domain="127.0.0.1", path="/")
    emitter = Emitter(
        mini.url.removeprefix("http://"),
        protocol="http",
        method=method,
        batch_size=1,
        session=session,
    )
    subject = Subject().set_platform("web").set_user_id("user-7")
    return Tracker(namespace="qa", emitters=emitter, app_id="shop", subject=subject)


def parse_tstamp(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def expected_derived_tstamp(event: dict[str, Any]) -> datetime.datetime:
    collected = parse_tstamp(event["collector_tstamp"])
    created = parse_tstamp(event["dvce_created_tstamp"])
    sent = parse_tstamp(event["dvce_sent_tstamp"])
    return collected - (sent - created) if created < sent else collected


@pytest.mark.parametrize("method", ["get", "post"])
def test_page_view_from_the_python_tracker(local_mini: LocalMini, method: str) -> None:
    tracker = tracker_for(local_mini, method=method)

    tracker.track(
        PageView(
            page_url="https://shop.test:8443/basket/view?item=7#top",
            page_title="Basket",
            referrer="https://search.test/?q=boots",
        )
    )
    tracker.flush()

    [item] = local_mini.wait_for("/micro/good", count=1)
    event = item["event"]
    assert item["eventType"] == "page_view"
    assert (event["app_id"], event["platform"], event["event"]) == ("shop", "web", "page_view")
    assert event["page_url"] == "https://shop.test:8443/basket/view?item=7#top"
    assert (
        event["page_urlscheme"],
        event["page_urlhost"],
        event["page_urlport"],
        event["page_urlpath"],
        event["page_urlquery"],
        event["page_urlfragment"],
    ) == ("https", "shop.test", 8443, "/basket/view", "item=7", "top")
    assert (event["refr_urlhost"], event["refr_urlquery"]) == ("search.test", "q=boots")
    assert event["page_title"] == "Basket"
    assert (
        event["event_vendor"],
        event["event_name"],
        event["event_format"],
        event["event_version"],
    ) == ("com.snowplowanalytics.snowplow", "page_view", "jsonschema", "1-0-0")
    assert event["user_id"] == "user-7"
    assert event["network_userid"] == COOKIE_NUID
    assert event["v_tracker"].startswith("py-")
    # The Python tracker rounds stm down to the second, so it is often before dtm: then the
    # device clock cannot be trusted and derived_tstamp is the collector's time.
    assert parse_tstamp(event["derived_tstamp"]) == expected_derived_tstamp(event)


@pytest.mark.parametrize("method", ["get", "post"])
def test_structured_event_from_the_python_tracker(local_mini: LocalMini, method: str) -> None:
    tracker = tracker_for(local_mini, method=method)

    tracker.track(
        StructuredEvent(
            category="shop", action="add-to-basket", label="boots", property_="size-9", value=42.5
        )
    )
    tracker.flush()

    [item] = local_mini.wait_for("/micro/good", {"event_type": "struct"}, count=1)
    event = item["event"]
    assert (
        event["se_category"],
        event["se_action"],
        event["se_label"],
        event["se_property"],
        event["se_value"],
    ) == ("shop", "add-to-basket", "boots", "size-9", 42.5)
    assert (event["event_vendor"], event["event_name"]) == ("com.google.analytics", "event")


@pytest.mark.parametrize("method", ["get", "post"])
def test_self_describing_event_with_two_entities(local_mini: LocalMini, method: str) -> None:
    tracker = tracker_for(local_mini, method=method)

    tracker.track(
        SelfDescribing(
            SelfDescribingJson(CHECKOUT, {"price": 19.99, "sku": "B-1"}),
            context=[
                SelfDescribingJson(USER, {"id": "u1", "plan": "pro"}),
                SelfDescribingJson(DEVICE, {"model": "phone"}),
            ],
        )
    )
    tracker.flush()

    [item] = local_mini.wait_for(
        "/micro/good", {"schema": CHECKOUT, "contexts": [USER, DEVICE]}, count=1
    )
    event = item["event"]
    assert item["eventType"] == "unstruct"
    assert item["contexts"] == [USER, DEVICE]
    assert event["unstruct_event_com_acme_checkout_1"] == {"price": 19.99, "sku": "B-1"}
    assert event["contexts_com_acme_user_1"] == [{"id": "u1", "plan": "pro"}]
    assert event["contexts_com_acme_device_1"] == [{"model": "phone"}]
    assert (event["event_vendor"], event["event_name"], event["event_version"]) == (
        "com.acme",
        "checkout",
        "1-0-0",
    )


def test_invalid_event_becomes_a_schema_violation_naming_the_property(
    local_mini: LocalMini,
) -> None:
    tracker = tracker_for(local_mini, method="post")

    tracker.track(SelfDescribing(SelfDescribingJson(CHECKOUT, {"price": "free", "sku": "B-1"})))
    tracker.flush()

    [item] = local_mini.wait_for("/micro/bad", count=1)
    row = item["badRow"]
    assert row["schema"] == (
        "iglu:com.snowplowanalytics.snowplow.badrows/schema_violations/jsonschema/2-0-1"
    )
    [message] = row["data"]["failure"]["messages"]
    assert message["schemaKey"] == CHECKOUT
    [report] = message["error"]["dataReports"]
    assert report["path"] == "$.price"
    assert "price" in item["errors"][0]
    assert local_mini.get_json("/micro/all") == {"total": 1, "good": 0, "bad": 1}


def test_network_userid_is_the_cookie_the_collector_set(local_mini: LocalMini) -> None:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    with opener.open(f"{local_mini.url}/i?e=pv&p=web&tv=curl&aid=cookie-test") as response:
        assert response.headers["Content-Type"] == "image/gif"
        set_cookie = response.headers["Set-Cookie"]

    nuid = set_cookie.split(";")[0].removeprefix("sp=")
    assert uuid.UUID(nuid)
    [item] = local_mini.wait_for("/micro/good", count=1)
    assert item["event"]["network_userid"] == nuid


def test_every_good_event_reads_the_same_in_the_analytics_sdk(local_mini: LocalMini) -> None:
    tracker = tracker_for(local_mini, method="post")
    tracker.track(PageView(page_url="http://shop.test/", page_title="Home"))
    tracker.track(StructuredEvent(category="c", action="a", value=1.5))
    tracker.track(
        SelfDescribing(
            SelfDescribingJson(CHECKOUT, {"price": 1, "sku": "s"}),
            context=[SelfDescribingJson(USER, {"id": "u"})],
        )
    )
    tracker.flush()
    local_mini.wait_for("/micro/good", count=3)

    lines = [line.rstrip("\n") for line in local_mini.tsv_lines]

    assert len(lines) == 3
    for line in lines:
        ours = enriched.to_json(enriched.from_tsv(line))
        theirs = event_transformer.transform(line)
        assert normalise_sdk(theirs) == ours


def normalise_sdk(event: dict[str, Any]) -> dict[str, Any]:
    """The Python SDK's output with its two documented differences from ours undone.

    It names field 122 ``refr_device_tstamp`` (canonically ``refr_dvce_tstamp``) and keeps
    ``se_value`` as a string where the canonical type is a number.
    """
    event = dict(event)
    if "refr_device_tstamp" in event:
        event["refr_dvce_tstamp"] = event.pop("refr_device_tstamp")
    if "se_value" in event:
        event["se_value"] = float(event["se_value"])
    return event


@pytest.mark.parametrize(
    ("request_kwargs", "expected_schema", "expected_text"),
    [
        pytest.param(
            {"path": "/i?e=pv&p=web&page=%zz%ff"},
            "collector_payload_format_violation",
            "querystring",
            id="malformed-query-string",
        ),
        pytest.param(
            {
                "path": "/com.snowplowanalytics.snowplow/tp2",
                "data": b"{oops",
                "content_type": "application/json",
            },
            "tracker_protocol_violations",
            "invalid JSON",
            id="non-json-body",
        ),
        pytest.param(
            {
                "path": "/com.snowplowanalytics.snowplow/tp2",
                "data": b"e=pv",
                "content_type": "text/plain",
            },
            "tracker_protocol_violations",
            "contentType",
            id="wrong-content-type",
        ),
        pytest.param(
            {"path": "/i?e=xyz&p=web&tv=t"},
            "schema_violations",
            "e: got 'xyz'",
            id="unknown-event-type",
        ),
        pytest.param(
            {"path": "/i?e=ue&p=web&tv=t&ue_px=%%%%"},
            "schema_violations",
            "ue_px",
            id="broken-base64",
        ),
        pytest.param(
            {"path": "/i?p=web&tv=t"}, "schema_violations", "e: got None", id="missing-event-type"
        ),
    ],
)
def test_bad_input_becomes_a_bad_row_with_a_clear_message(
    local_mini: LocalMini,
    request_kwargs: dict[str, Any],
    expected_schema: str,
    expected_text: str,
) -> None:
    request = urllib.request.Request(
        local_mini.url + request_kwargs["path"],
        data=request_kwargs.get("data"),
        headers={"Content-Type": request_kwargs.get("content_type", "text/plain")},
    )

    with urllib.request.urlopen(request) as response:
        assert response.status == 200

    [item] = local_mini.wait_for("/micro/bad", count=1)
    assert f"/{expected_schema}/" in item["badRow"]["schema"]
    assert expected_text in item["errors"][0]
    assert local_mini.get_json("/micro/good") == []


def test_schema_in_no_reachable_registry_fails_within_seconds(tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens there
    resolver = resolver_config(http_repository("Unreachable", f"http://127.0.0.1:{closed_port}"))

    with run_local_mini(tmp_path, resolver=resolver) as mini:
        ue = json.dumps(
            {
                "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
                "data": {"schema": CHECKOUT, "data": {}},
            }
        )
        urllib.request.urlopen(
            f"{mini.url}/i?e=ue&p=web&tv=t&ue_pr=" + urllib.request.quote(ue)
        ).close()
        [item] = mini.wait_for("/micro/bad", count=1, timeout_seconds=15)

    [message] = item["badRow"]["data"]["failure"]["messages"]
    assert message["schemaKey"] == CHECKOUT
    assert message["error"]["error"] == "ResolutionError"
    history = {entry["repository"]: entry for entry in message["error"]["lookupHistory"]}
    assert history["Unreachable"]["errors"][0]["error"] == "RepoFailure"


def test_micro_iglu_route_returns_the_resolved_schema(local_mini: LocalMini) -> None:
    schema = local_mini.get_json("/micro/iglu/com.acme/checkout/jsonschema/1-0-0")

    assert schema["self"]["name"] == "checkout"
    assert schema["required"] == ["price", "sku"]


def test_reset_empties_the_store(local_mini: LocalMini) -> None:
    urllib.request.urlopen(f"{local_mini.url}/i?e=pv&p=web&tv=t").close()
    local_mini.wait_for("/micro/good", count=1)

    counts = local_mini.get_json("/micro/reset", {})

    assert counts == {"total": 0, "good": 0, "bad": 0}
    assert local_mini.get_json("/micro/good") == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b'{"limit": 1e999}', "limit", id="infinite-limit"),
        pytest.param(b'{"limit": ' + b"9" * 5000 + b"}", "body", id="huge-limit"),
        pytest.param(b'{"limit": -1}', "limit", id="negative-limit"),
        pytest.param(b"[" * 10000 + b"]" * 10000, "body", id="deep-nesting"),
        pytest.param(b'{"limit": "\xff"}', "body", id="not-utf8"),
        pytest.param(b'{"colour": "red"}', "colour: unknown filter", id="unknown-filter"),
    ],
)
def test_bad_filters_get_400_naming_the_problem(
    local_mini: LocalMini, body: bytes, expected: str
) -> None:
    request = urllib.request.Request(
        f"{local_mini.url}/micro/good", data=body, headers={"Content-Type": "application/json"}
    )

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)

    assert caught.value.code == 400
    assert expected in json.load(caught.value)["error"]


def test_reset_needs_get_or_post(local_mini: LocalMini) -> None:
    request = urllib.request.Request(f"{local_mini.url}/micro/reset", method="DELETE")

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)

    assert caught.value.code == 405


def test_iglu_route_refuses_a_parent_folder(local_mini: LocalMini) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{local_mini.url}/micro/iglu/%2e%2e/x/jsonschema/1-0-0", timeout=10)

    assert caught.value.code in (400, 404)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["--port", "99999"], "--port / SNOWPLOW_MINI_PORT", id="port-out-of-range"),
        pytest.param(
            ["--schemas", "/nonexistent-folder"],
            "expected an existing folder",
            id="missing-schema-folder",
        ),
        pytest.param(["--iglu", "/nonexistent.json"], "cannot read", id="missing-resolver"),
    ],
)
def test_bad_configuration_stops_with_a_message_naming_the_setting(
    args: list[str], expected: str
) -> None:
    result = subprocess.run(
        [snowplow_mini_command(), "local", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
