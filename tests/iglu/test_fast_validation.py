"""The fast validation path never accepts what jsonschema's draft 4 validator rejects."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from snowplow_pipeline.iglu import formats, schemakeys, validation

KEY = schemakeys.SchemaKey.parse("iglu:com.acme/sample/jsonschema/1-0-0")
SCHEMA: dict[str, Any] = {
    "$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
    "self": {"vendor": "com.acme", "name": "sample", "format": "jsonschema", "version": "1-0-0"},
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 0, "maximum": 10, "exclusiveMaximum": True},
        "ratio": {"type": ["number", "null"]},
        "plan": {"enum": ["free", "pro", None]},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]+$", "maxLength": 8},
        "when": {"type": "string", "format": "date-time"},
        "id": {"type": "string", "format": "uuid"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3, "uniqueItems": True},
        "nested": {
            "type": "object",
            "properties": {"flag": {"type": "boolean"}},
            "required": ["flag"],
            "additionalProperties": False,
        },
    },
    "required": ["count"],
    "additionalProperties": False,
}
SLOW = Draft4Validator(SCHEMA, format_checker=formats.format_checker())

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 15)
    | st.floats(allow_nan=False)
    | st.sampled_from(
        [
            "free",
            "pro",
            "AB-12",
            "ab-1",
            "2024-01-02T03:04:05Z",
            "2024-13-40",
            "0d4e6a52-5b0e-4a7a-9a0f-6d2b1d3c4e5f",
            "not-a-uuid",
            "",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["flag", "x"]), children, max_size=2)
    ),
    max_leaves=8,
)
instances = st.dictionaries(st.sampled_from([*SCHEMA["properties"], "extra"]), values, max_size=6)


@settings(max_examples=400, deadline=None)
@given(instances)
def test_fast_and_slow_validators_agree(instance: dict[str, Any]) -> None:
    reports = validation.validate(KEY, SCHEMA, instance)

    assert (reports == []) == (not list(SLOW.iter_errors(instance)))


def test_valid_instance_takes_the_fast_path() -> None:
    validation.validate(KEY, SCHEMA, {"count": 1})

    assert validation._compile(KEY, SCHEMA).is_valid_fast is not None
