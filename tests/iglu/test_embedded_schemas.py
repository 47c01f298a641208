"""The embedded registry's schemas: well-formed, named by their path, and fit for real data."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from snowplow_pipeline.iglu import embedded, validation
from snowplow_pipeline.iglu.schemakeys import SchemaKey

SCHEMAS_ROOT = embedded.PATH / "schemas"
SCHEMA_FILES = sorted(path for path in SCHEMAS_ROOT.rglob("*") if path.is_file())
SP = "iglu:com.snowplowanalytics.snowplow"
BADROWS = "iglu:com.snowplowanalytics.snowplow.badrows"
UUID_1 = "c6ef3124-b53a-4b13-a233-0088f79dcbcb"
UUID_2 = "8a2b8e0e-4a8c-4a5d-9f4b-3c2b1a0f9e8d"


def load(uri: str) -> tuple[SchemaKey, dict[str, Any]]:
    key = SchemaKey.parse(uri)
    return key, json.loads((SCHEMAS_ROOT / key.path).read_text())


def problems(uri: str, instance: Any) -> list[str]:
    key, schema = load(uri)
    return [report["message"] for report in validation.validate(key, schema, instance)]


def test_embedded_registry_holds_the_expected_schemas():
    held = {str(path.relative_to(SCHEMAS_ROOT)) for path in SCHEMA_FILES}

    expected = {
        *(f"com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-{n}" for n in range(5)),
        "com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1",
        "com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        "com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
        "com.snowplowanalytics.snowplow/client_session/jsonschema/1-0-1",
        "com.snowplowanalytics.snowplow/client_session/jsonschema/1-0-2",
        "com.snowplowanalytics.snowplow/ua_parser_context/jsonschema/1-0-0",
        "com.snowplowanalytics.snowplow.badrows/schema_violations/jsonschema/2-0-1",
        "com.snowplowanalytics.snowplow.badrows/tracker_protocol_violations/jsonschema/1-0-1",
        "com.snowplowanalytics.snowplow.badrows/adapter_failures/jsonschema/1-0-0",
        "com.snowplowanalytics.snowplow.badrows/collector_payload_format_violation/jsonschema/1-0-0",
        "com.snowplowanalytics.snowplow.badrows/enrichment_failures/jsonschema/2-0-1",
        "com.snowplowanalytics.snowplow.badrows/size_violation/jsonschema/1-0-0",
        "com.snowplowanalytics.snowplow.badrows/generic_error/jsonschema/1-0-0",
        "com.snowplowanalytics.snowplow.badrows/loader_parsing_error/jsonschema/2-0-0",
    }
    assert expected <= held


@pytest.mark.parametrize(
    "path", SCHEMA_FILES, ids=[str(p.relative_to(SCHEMAS_ROOT)) for p in SCHEMA_FILES]
)
def test_embedded_schema_is_valid_draft_4_and_self_matches_its_path(path: Path):
    key = SchemaKey.parse("iglu:" + str(path.relative_to(SCHEMAS_ROOT)))
    schema = json.loads(path.read_text())

    assert validation.check_schema(key, schema) == []
    assert schema["$schema"] == (
        "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"
    )
    assert len(schema["description"]) > 20


def encode_json(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


ENTITIES = {
    "schema": f"{SP}/contexts/jsonschema/1-0-0",
    "data": [
        {"schema": f"{SP}/web_page/jsonschema/1-0-0", "data": {"id": UUID_1}},
        {
            "schema": f"{SP}/client_session/jsonschema/1-0-2",
            "data": {
                "userId": UUID_2,
                "sessionId": UUID_1,
                "sessionIndex": 3,
                "previousSessionId": None,
                "storageMechanism": "COOKIE_1",
                "firstEventId": UUID_1,
                "firstEventTimestamp": "2024-05-01T10:00:00.000Z",
                "eventIndex": 1,
            },
        },
    ],
}
BROWSER_BODY = {
    "schema": f"{SP}/payload_data/jsonschema/1-0-4",
    "data": [
        {
            "e": "pv",
            "url": "https://shop.example.com/",
            "page": "Home",
            "tv": "js-3.23.0",
            "tna": "sp",
            "aid": "shop",
            "p": "web",
            "tz": "Europe/Paris",
            "lang": "fr-FR",
            "cs": "UTF-8",
            "res": "1920x1080",
            "cd": "24",
            "cookie": "1",
            "eid": UUID_1,
            "dtm": "1714557600000",
            "vp": "1280x720",
            "ds": "1280x3000",
            "vid": "3",
            "sid": UUID_1,
            "duid": UUID_2,
            "cx": encode_json(ENTITIES),
            "stm": "1714557600010",
        },
        {"e": "pp", "tv": "js-3.23.0", "p": "web", "pp_mix": "0", "pp_max": "120"},
    ],
}


def test_payload_data_accepts_a_real_tracker_body():
    for version in ("1-0-0", "1-0-3", "1-0-4"):
        assert problems(f"{SP}/payload_data/jsonschema/{version}", BROWSER_BODY["data"]) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({"e": "pv"}, ["$: expected array, got object"], id="object-not-array"),
        pytest.param([], ["$: expected at least 1 item, got array of 0 items"], id="empty-batch"),
        pytest.param(
            [{"e": "pv", "tv": "js-3", "vid": 3}],
            ["$[0].vid: expected string, got integer 3"],
            id="number-value",
        ),
        pytest.param(
            [{"tv": "js-3", "p": "web"}],
            ['$[0]: missing required property "e"'],
            id="no-event-type",
        ),
        pytest.param(
            [{"e": "pv", "p": "web"}],
            ['$[0]: missing required property "tv"'],
            id="no-tracker-version",
        ),
    ],
)
def test_payload_data_rejects_malformed_bodies(data, expected):
    assert problems(f"{SP}/payload_data/jsonschema/1-0-4", data) == expected


def test_browser_entities_are_classified_offline_with_embedded_schemas():
    context_uri = ENTITIES["schema"]

    assert problems(context_uri, ENTITIES["data"]) == []
    for entity in ENTITIES["data"]:
        assert problems(entity["schema"], entity["data"]) == []


def test_contexts_reject_an_entity_that_is_not_self_describing():
    data = [{"schema": f"{SP}/web_page/jsonschema/1-0-0", "id": UUID_1}]

    assert problems(f"{SP}/contexts/jsonschema/1-0-1", data) == [
        '$[0]: missing required property "data"',
        '$[0]: got unexpected property "id", expected only the declared properties',
    ]


def test_unstruct_event_wraps_exactly_one_self_describing_json():
    good = {"schema": "iglu:com.acme/click/jsonschema/1-0-0", "data": {"x": 1}}

    assert problems(f"{SP}/unstruct_event/jsonschema/1-0-0", good) == []
    assert problems(f"{SP}/unstruct_event/jsonschema/1-0-0", [good]) == [
        "$: expected object, got array of 1 item"
    ]


def test_web_page_id_must_be_a_uuid():
    assert problems(f"{SP}/web_page/jsonschema/1-0-0", {"id": "page-1"}) == [
        "$.id: expected a string matching ^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]"
        '{4}-[0-9a-fA-F]{12}$, got string "page-1"'
    ]


PROCESSOR = {"artifact": "snowplow-mini-enrich", "version": "0.1.0"}
RAW_EVENT = {
    "vendor": "com.snowplowanalytics.snowplow",
    "version": "tp2",
    "parameters": [{"name": "e", "value": "ue"}],
    "contentType": "application/json",
    "loaderName": "thrift",
    "encoding": "UTF-8",
    "hostname": "localhost",
    "timestamp": "2024-05-01T10:00:00.000Z",
    "ipAddress": "127.0.0.1",
    "useragent": None,
    "refererUri": None,
    "headers": ["Host: localhost"],
    "userId": UUID_1,
}
SCHEMA_VIOLATION = {
    "processor": PROCESSOR,
    "failure": {
        "timestamp": "2024-05-01T10:00:01.000Z",
        "messages": [
            {
                "schemaKey": "iglu:com.acme/click/jsonschema/1-0-0",
                "error": {
                    "error": "ResolutionError",
                    "lookupHistory": [
                        {
                            "repository": "Embedded snowplow-mini",
                            "errors": [{"error": "NotFound"}],
                            "attempts": 1,
                            "lastAttempt": "2024-05-01T10:00:00.900Z",
                        },
                        {
                            "repository": "Iglu Central",
                            "errors": [{"error": "RepoFailure", "message": "timed out"}],
                            "attempts": 4,
                            "lastAttempt": "2024-05-01T10:00:00.950Z",
                        },
                    ],
                },
            },
            {
                "schemaKey": "iglu:com.acme/cart/jsonschema/1-0-0",
                "error": {
                    "error": "ValidationError",
                    "dataReports": [
                        {
                            "message": "$.n: expected integer, got string",
                            "path": "$.n",
                            "keyword": "type",
                            "targets": ["integer"],
                        }
                    ],
                },
            },
            {"field": "ue_px", "value": "e30", "error": "not JSON"},
        ],
    },
    "payload": {"enriched": {"event_id": UUID_1}, "raw": RAW_EVENT},
}


def test_schema_violations_bad_row_accepts_resolution_and_validation_errors():
    assert problems(f"{BADROWS}/schema_violations/jsonschema/2-0-1", SCHEMA_VIOLATION) == []


def test_schema_violations_bad_row_needs_at_least_one_message():
    bad_row = {**SCHEMA_VIOLATION, "failure": {"timestamp": "2024-05-01T10:00:01Z", "messages": []}}

    assert problems(f"{BADROWS}/schema_violations/jsonschema/2-0-1", bad_row) == [
        "$.failure.messages: expected at least 1 item, got array of 0 items"
    ]


def test_size_violation_bad_row_carries_sizes_and_raw_payload():
    bad_row = {
        "processor": {"artifact": "snowplow-mini-collector", "version": "0.1.0"},
        "failure": {
            "timestamp": "2024-05-01T10:00:00Z",
            "maximumAllowedSizeBytes": 1000,
            "actualSizeBytes": 2400,
            "expectation": "a request of at most 1000 bytes",
        },
        "payload": "POST /com.snowplowanalytics.snowplow/tp2 …",
    }

    assert problems(f"{BADROWS}/size_violation/jsonschema/1-0-0", bad_row) == []
    del bad_row["failure"]["actualSizeBytes"]
    assert problems(f"{BADROWS}/size_violation/jsonschema/1-0-0", bad_row) == [
        '$.failure: missing required property "actualSizeBytes"'
    ]


def test_tracker_protocol_violation_bad_row_carries_the_collector_payload():
    bad_row = {
        "processor": PROCESSOR,
        "failure": {
            "timestamp": "2024-05-01T10:00:00Z",
            "vendor": "com.snowplowanalytics.snowplow",
            "version": "tp2",
            "messages": [{"field": "body", "value": None, "expectation": "a non-empty body"}],
        },
        "payload": {
            "vendor": "com.snowplowanalytics.snowplow",
            "version": "tp2",
            "querystring": [],
            "contentType": "application/json",
            "body": None,
            "collector": "snowplow-mini-collector",
            "encoding": "UTF-8",
            "hostname": "localhost",
            "timestamp": "2024-05-01T10:00:00.000Z",
            "ipAddress": "127.0.0.1",
            "useragent": "curl/8",
            "refererUri": None,
            "headers": [],
            "networkUserId": UUID_2,
        },
    }

    assert problems(f"{BADROWS}/tracker_protocol_violations/jsonschema/1-0-1", bad_row) == []
    assert problems(f"{BADROWS}/adapter_failures/jsonschema/1-0-0", bad_row) == []


def test_generic_error_bad_row_is_errors_and_a_raw_string():
    bad_row = {
        "processor": PROCESSOR,
        "failure": {"timestamp": "2024-05-01T10:00:00Z", "errors": ["bad query string"]},
        "payload": "a=%ZZ",
    }

    assert problems(f"{BADROWS}/generic_error/jsonschema/1-0-0", bad_row) == []
    assert problems(f"{BADROWS}/generic_error/jsonschema/1-0-0", {**bad_row, "extra": 1}) == [
        '$: got unexpected property "extra", expected only the declared properties'
    ]
