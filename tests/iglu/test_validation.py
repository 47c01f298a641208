"""Validation reports: exact messages, paths, keywords and targets; invalid schemas."""

from __future__ import annotations

import time

import pytest

from snowplow_pipeline.iglu import formats, validation
from snowplow_pipeline.iglu.schemakeys import SchemaKey
from tests.helpers.iglu_registry import iglu_schema

URI = "iglu:com.acme/purchase/jsonschema/1-0-0"
KEY = SchemaKey.parse(URI)
SCHEMA = iglu_schema(
    URI,
    {
        "type": "object",
        "properties": {
            "price": {"type": "integer", "minimum": 0},
            "currency": {"enum": ["EUR", "USD"]},
            "sku": {"type": "string", "maxLength": 5, "pattern": "^[A-Z]+$"},
            "at": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
            "note": {"type": ["string", "null"]},
        },
        "required": ["price", "currency"],
        "additionalProperties": False,
    },
)


def test_valid_instance_yields_no_reports():
    instance = {"price": 3, "currency": "EUR", "at": "2024-05-01T10:00:00.123Z", "note": None}

    assert validation.validate(KEY, SCHEMA, instance) == []


def test_wrong_type_report_says_where_what_was_received_and_what_was_expected():
    reports = validation.validate(KEY, SCHEMA, {"price": "x", "currency": "EUR"})

    assert reports == [
        {
            "message": '$.price: expected integer, got string "x"',
            "path": "$.price",
            "keyword": "type",
            "targets": ["integer"],
        }
    ]


def test_every_problem_is_reported_sorted_by_path():
    instance = {
        "price": -1,
        "currency": "GBP",
        "sku": "abcdefg",
        "tags": ["a", 2, "c"],
        "note": 5,
        "extra": True,
    }

    reports = validation.validate(KEY, SCHEMA, instance)

    assert [report["message"] for report in reports] == [
        '$: got unexpected property "extra", expected only the declared properties',
        '$.currency: expected one of "EUR", "USD", got string "GBP"',
        "$.note: expected string or null, got integer 5",
        "$.price: expected a number >= 0, got integer -1",
        '$.sku: expected at most 5 characters, got string "abcdefg" (7 characters)',
        '$.sku: expected a string matching ^[A-Z]+$, got string "abcdefg"',
        "$.tags: expected at most 2 items, got array of 3 items",
        "$.tags[1]: expected string, got integer 2",
    ]
    assert [(r["keyword"], r["targets"]) for r in reports[:3]] == [
        ("additionalProperties", ["extra"]),
        ("enum", ["EUR", "USD"]),
        ("type", ["string", "null"]),
    ]


def test_each_missing_required_property_gets_its_own_report():
    reports = validation.validate(KEY, SCHEMA, {})

    assert reports == [
        {
            "message": '$: missing required property "price"',
            "path": "$",
            "keyword": "required",
            "targets": ["price"],
        },
        {
            "message": '$: missing required property "currency"',
            "path": "$",
            "keyword": "required",
            "targets": ["currency"],
        },
    ]


def test_non_object_instance_is_reported_as_wrong_type():
    reports = validation.validate(KEY, SCHEMA, [1, 2])

    assert [r["message"] for r in reports] == ["$: expected object, got array of 2 items"]


def test_property_names_that_are_not_identifiers_are_quoted_in_paths():
    uri = "iglu:com.acme/odd/jsonschema/1-0-0"
    schema = iglu_schema(uri, {"properties": {"a b": {"type": "integer"}}})

    reports = validation.validate(SchemaKey.parse(uri), schema, {"a b": "1"})

    assert reports[0]["path"] == "$['a b']"


def test_long_received_strings_are_shortened_in_messages():
    reports = validation.validate(KEY, SCHEMA, {"price": "y" * 10_000, "currency": "EUR"})

    assert len(reports[0]["message"]) < 100
    assert reports[0]["message"].startswith('$.price: expected integer, got string "yyy')


@pytest.mark.parametrize(
    ("value", "is_valid"),
    [
        pytest.param("2024-05-01T10:00:00Z", True, id="utc"),
        pytest.param("2024-05-01T10:00:00.5+02:00", True, id="offset-and-fraction"),
        pytest.param("2016-12-31T23:59:60Z", True, id="leap-second"),
        pytest.param("2024-05-01", False, id="date-only"),
        pytest.param("2024-05-01T10:00:00", False, id="no-offset"),
        pytest.param("2024-02-30T10:00:00Z", False, id="no-such-day"),
        pytest.param("yesterday", False, id="words"),
    ],
)
def test_date_time_format_is_checked_as_rfc_3339(value, is_valid):
    reports = validation.validate(KEY, SCHEMA, {"price": 1, "currency": "EUR", "at": value})

    assert (reports == []) is is_valid
    if not is_valid:
        assert reports[0]["message"] == f'$.at: expected a date-time string, got string "{value}"'


@pytest.mark.parametrize(
    ("format_name", "good", "bad"),
    [
        ("uri", "https://example.com/a?b=c%20d", "not a uri"),
        ("email", "someone@example.com", "someone"),
        ("ipv4", "192.168.0.1", "300.1.1.1"),
        ("ipv6", "::1", "1:::2"),
        ("hostname", "api.example.com", "-bad-.example"),
        ("uuid", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "f81d4fae7dec11d0a76500a0c91e6bf6"),
        ("date", "2024-02-29", "2023-02-29"),
    ],
)
def test_common_string_formats_are_checked(format_name, good, bad):
    uri = f"iglu:com.acme/{format_name}_holder/jsonschema/1-0-0"
    schema = iglu_schema(uri, {"properties": {"v": {"type": "string", "format": format_name}}})
    key = SchemaKey.parse(uri)

    assert validation.validate(key, schema, {"v": good}) == []
    assert [r["keyword"] for r in validation.validate(key, schema, {"v": bad})] == ["format"]


def test_format_checker_accepts_non_strings_for_string_formats():
    assert formats.is_date_time(5) and formats.is_uri(None) and formats.is_uuid([])


def test_invalid_schema_raises_with_every_issue_instead_of_crashing():
    uri = "iglu:com.acme/broken/jsonschema/1-0-0"
    schema = iglu_schema(uri, {"type": "objekt", "properties": {"a": {"minLength": -1}}})

    with pytest.raises(validation.InvalidSchemaError) as caught:
        validation.validate(SchemaKey.parse(uri), schema, {})

    issues = caught.value.issues
    assert [issue["path"] for issue in issues] == ["$.properties.a.minLength", "$.type"]
    assert issues[1]["message"].startswith(
        'got string "objekt", which the draft 4 meta-schema rejects'
    )
    assert caught.value.to_json() == {"error": "ValidationError", "schemaIssues": issues}
    assert str(caught.value).startswith(f"schema {uri} is invalid: $.properties.a.minLength")


def test_schema_whose_self_names_another_version_is_invalid():
    schema = iglu_schema("iglu:com.acme/purchase/jsonschema/1-0-1", {"type": "object"})

    issues = validation.check_schema(KEY, schema)

    assert issues == [
        {
            "path": "$.self",
            "message": (
                "describes iglu:com.acme/purchase/jsonschema/1-0-1, "
                "but the schema was looked up as iglu:com.acme/purchase/jsonschema/1-0-0"
            ),
        }
    ]


def test_schema_without_self_is_invalid():
    issues = validation.check_schema(KEY, {"type": "object"})

    assert issues == [{"path": "$.self", "message": "got None, expected an object"}]


def test_invalid_regular_expression_is_a_schema_issue():
    uri = "iglu:com.acme/regex/jsonschema/1-0-0"
    schema = iglu_schema(uri, {"properties": {"a": {"type": "string", "pattern": "(unclosed"}}})

    issues = validation.check_schema(SchemaKey.parse(uri), schema)

    assert [issue["path"] for issue in issues] == ["$.properties.a.pattern"]


def test_remote_reference_is_not_fetched_but_reported_as_schema_issue():
    uri = "iglu:com.acme/remote/jsonschema/1-0-0"
    remote = "http://127.0.0.1:9/definitions.json#/thing"
    schema = iglu_schema(uri, {"properties": {"a": {"$ref": remote}}})

    with pytest.raises(validation.InvalidSchemaError) as caught:
        validation.validate(SchemaKey.parse(uri), schema, {"a": 1})

    assert "remote references are not fetched" in caught.value.issues[0]["message"]


def test_local_reference_inside_the_schema_is_followed():
    uri = "iglu:com.acme/local_ref/jsonschema/1-0-0"
    schema = iglu_schema(
        uri,
        {
            "definitions": {"positive": {"type": "integer", "minimum": 1}},
            "properties": {"n": {"$ref": "#/definitions/positive"}},
        },
    )

    reports = validation.validate(SchemaKey.parse(uri), schema, {"n": 0})

    assert [r["message"] for r in reports] == ["$.n: expected a number >= 1, got integer 0"]


def test_changed_schema_for_the_same_key_is_recompiled():
    uri = "iglu:com.acme/changing/jsonschema/1-0-0"
    key = SchemaKey.parse(uri)
    validation.validate(key, iglu_schema(uri, {"type": "object"}), {})

    reports = validation.validate(key, iglu_schema(uri, {"type": "array"}), {})

    assert [r["message"] for r in reports] == ["$: expected array, got object"]


def test_data_reports_wrap_into_the_iglu_client_error():
    reports = validation.validate(KEY, SCHEMA, {"price": 1})

    assert validation.data_reports_json(reports) == {
        "error": "ValidationError",
        "dataReports": reports,
    }


def test_small_entity_validates_several_thousand_times_per_second():
    uri = "iglu:com.acme/small_entity/jsonschema/1-0-0"
    schema = iglu_schema(
        uri,
        {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string", "maxLength": 100},
                "count": {"type": "integer", "minimum": 0},
                "at": {"type": "string", "format": "date-time"},
            },
            "required": ["id", "count"],
            "additionalProperties": False,
        },
    )
    key = SchemaKey.parse(uri)
    instance = {
        "id": "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "name": "widget",
        "count": 3,
        "at": "2024-05-01T10:00:00.000Z",
    }

    count = 2000
    started = time.perf_counter()
    for _ in range(count):
        assert not validation.validate(key, schema, instance)
    per_second = count / (time.perf_counter() - started)

    # The target is several thousand per second; the bound leaves room for a slow CI machine.
    assert per_second > 2000, f"{per_second:.0f} validations/s"
