"""Schema keys and criteria: parsing and matching, no I/O."""

from __future__ import annotations

import pytest

from snowplow_pipeline.iglu.schemakeys import SchemaCriterion, SchemaKey, SchemaKeyError


def test_schema_key_parses_into_its_parts_and_renders_back():
    key = SchemaKey.parse("iglu:com.acme-inc/check_out/jsonschema/12-0-3")

    assert (key.vendor, key.name, key.format, key.version) == (
        "com.acme-inc",
        "check_out",
        "jsonschema",
        "12-0-3",
    )
    assert key.uri == "iglu:com.acme-inc/check_out/jsonschema/12-0-3"
    assert key.path == "com.acme-inc/check_out/jsonschema/12-0-3"
    assert (key.model, key.revision, key.addition) == (12, 0, 3)
    assert str(key) == key.uri


def test_schema_keys_are_equal_values_usable_as_dict_keys():
    first = SchemaKey.parse("iglu:com.acme/event/jsonschema/1-0-0")
    second = SchemaKey.parse("iglu:com.acme/event/jsonschema/1-0-0")

    assert first == second
    assert {first: 1}[second] == 1


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("com.acme/event/jsonschema/1-0-0", id="no-iglu-prefix"),
        pytest.param("iglu:com.acme/event/jsonschema/1-0", id="two-numbers"),
        pytest.param("iglu:com.acme/event/jsonschema/0-0-0", id="model-zero"),
        pytest.param("iglu:com.acme/event/jsonschema/1-01-0", id="leading-zero"),
        pytest.param("iglu:com.acme/ev.ent/jsonschema/1-0-0", id="dot-in-name"),
        pytest.param("iglu:com.acme/event/1-0-0", id="no-format"),
        pytest.param("iglu:com.acme/event/jsonschema/1-*-*", id="criterion"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_schema_key_is_rejected_naming_value_and_expected_form(uri):
    with pytest.raises(SchemaKeyError) as caught:
        SchemaKey.parse(uri)

    assert str(caught.value) == (
        f"got {uri!r}, expected a schema key iglu:vendor/name/format/model-revision-addition"
    )


def test_non_string_schema_key_is_rejected_not_crashed_on():
    with pytest.raises(SchemaKeyError, match=r"^got 42, expected a schema key"):
        SchemaKey.parse(42)  # type: ignore[arg-type]


def test_very_long_bad_value_is_shortened_in_the_message():
    with pytest.raises(SchemaKeyError) as caught:
        SchemaKey.parse("x" * 500)

    assert len(str(caught.value)) < 200
    assert "…" in str(caught.value)


def test_schema_key_is_read_from_a_self_block():
    block = {"vendor": "com.acme", "name": "event", "format": "jsonschema", "version": "1-0-2"}

    assert SchemaKey.from_self(block) == SchemaKey.parse("iglu:com.acme/event/jsonschema/1-0-2")


def test_self_block_without_version_is_rejected():
    with pytest.raises(SchemaKeyError, match="expected string vendor, name, format and version"):
        SchemaKey.from_self({"vendor": "com.acme", "name": "event", "format": "jsonschema"})


@pytest.mark.parametrize(
    ("criterion", "uri", "expected"),
    [
        ("iglu:com.acme/event/jsonschema/1-*-*", "iglu:com.acme/event/jsonschema/1-2-3", True),
        ("iglu:com.acme/event/jsonschema/1-*-*", "iglu:com.acme/event/jsonschema/2-0-0", False),
        ("iglu:com.acme/event/jsonschema/1-0-*", "iglu:com.acme/event/jsonschema/1-0-9", True),
        ("iglu:com.acme/event/jsonschema/1-0-*", "iglu:com.acme/event/jsonschema/1-1-0", False),
        ("iglu:com.acme/event/jsonschema/1-0-0", "iglu:com.acme/event/jsonschema/1-0-0", True),
        ("iglu:com.acme/event/jsonschema/*-*-*", "iglu:com.acme/event/jsonschema/7-1-1", True),
        ("iglu:com.acme/event/jsonschema/1-*-*", "iglu:com.acme/other/jsonschema/1-0-0", False),
        ("iglu:com.acme/event/jsonschema/1-*-*", "iglu:com.acme.x/event/jsonschema/1-0-0", False),
    ],
    ids=[
        "any-revision",
        "other-model",
        "any-addition",
        "other-revision",
        "exact",
        "all-stars",
        "other-name",
        "other-vendor",
    ],
)
def test_criterion_matches_keys_of_its_family_only(criterion, uri, expected):
    assert SchemaCriterion.parse(criterion).matches(SchemaKey.parse(uri)) is expected


def test_criterion_renders_back_with_stars():
    criterion = SchemaCriterion.parse("iglu:com.acme/event/jsonschema/1-*-*")

    assert (criterion.model, criterion.revision, criterion.addition) == (1, None, None)
    assert criterion.uri == "iglu:com.acme/event/jsonschema/1-*-*"


def test_malformed_criterion_names_the_expected_form():
    with pytest.raises(SchemaKeyError) as caught:
        SchemaCriterion.parse("iglu:com.acme/event/jsonschema/1-x-*")

    assert "expected a schema criterion iglu:vendor/name/format/model-revision-addition" in str(
        caught.value
    )


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("iglu:../secret/jsonschema/1-0-0", id="parent-folder-vendor"),
        pytest.param("iglu:.hidden/x/jsonschema/1-0-0", id="vendor-starting-with-a-dot"),
        pytest.param("iglu:com..acme/x/jsonschema/1-0-0", id="double-dot-vendor"),
        pytest.param("iglu:" + "v" * 129 + "/x/jsonschema/1-0-0", id="vendor-too-long"),
        pytest.param("iglu:com.acme/" + "n" * 129 + "/jsonschema/1-0-0", id="name-too-long"),
        pytest.param("iglu:com.acme/x/jsonschema/1-0-" + "9" * 10, id="number-too-long"),
    ],
)
def test_schema_key_that_could_not_be_a_file_path_is_rejected(uri):
    with pytest.raises(SchemaKeyError):
        SchemaKey.parse(uri)
