"""Parsing a SnowplowMini spec: defaults, and every problem reported at once with its field."""

from __future__ import annotations

import pytest

from snowplow_operator import specs


def test_empty_spec_takes_the_documented_defaults() -> None:
    spec = specs.parse({})

    assert spec.elasticsearch.heap == "512m"
    assert spec.elasticsearch.storage.persistent is False
    assert spec.kibana.enabled is True
    assert spec.nsq.admin.enabled is True
    assert spec.iglu.iglu_central is True
    assert spec.collector.cookie.same_site == "None"
    assert spec.suspend is False


def test_every_problem_is_reported_with_its_field_path() -> None:
    bad = {
        "iglu": {
            "registries": [
                {"name": "a", "uri": "http://a.example"},
                {"name": "b", "uri": "http://b.example", "priority": -3},
            ]
        },
        "elasticsearch": {"heap": "lots"},
        "lifecycle": {"ttl": "1h", "expiresAt": "2030-01-01T00:00:00Z"},
    }

    with pytest.raises(specs.InvalidSpecError) as caught:
        specs.parse(bad)

    assert caught.value.problems == [
        "spec.lifecycle: got {'ttl': '1h', 'expiresAt': '2030-01-01T00:00:00Z'}, "
        "set ttl or expiresAt, not both",
        "spec.elasticsearch.heap: got 'lots', expected a string matching '^[1-9][0-9]*[mg]$'",
        "spec.iglu.registries[1].priority: got -3, expected greater than or equal to 0",
    ]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        pytest.param(
            {"enrich": {"enrichments": [{"name": "ua", "config": {"enabled": True}}]}},
            "spec.enrich.enrichments[0].config: got {'enabled': True}, expected a "
            "self-describing JSON whose schema is an Iglu URI (iglu:vendor/name/jsonschema/1-0-0)",
            id="enrichment-not-self-describing",
        ),
        pytest.param(
            {"collector": {"settings": {"PORT": "1", "NSQ__NSQD_HTTP_ADDRESS": "x:1"}}},
            "spec.collector.settings: got {'PORT': '1', 'NSQ__NSQD_HTTP_ADDRESS': 'x:1'}, "
            "reserved for the operator: NSQ__NSQD_HTTP_ADDRESS, PORT",
            id="collector-wiring-reserved",
        ),
        pytest.param(
            {"iglu": {"registries": [{"name": "a", "uri": "http://a"}] * 2}},
            "spec.iglu.registries: got [{'name': 'a', 'uri': 'http://a'}, "
            "{'name': 'a', 'uri': '..., "
            "duplicate registry names: a",
            id="duplicate-registries",
        ),
        pytest.param(
            {"collector": {"resources": {"limits": {"memory": "lots"}}}},
            "spec.collector.resources.limits.memory: got 'lots', expected a string matching "
            f"'{specs.QUANTITY_PATTERN}'",
            id="bad-quantity",
        ),
    ],
)
def test_problems_the_schema_cannot_see_are_named(spec: dict, problem: str) -> None:
    with pytest.raises(specs.InvalidSpecError) as caught:
        specs.parse(spec)

    assert caught.value.problems == [problem]


def test_integer_quantities_are_read_as_strings() -> None:
    spec = specs.parse({"collector": {"resources": {"requests": {"cpu": 1}}}})

    assert spec.collector.resources.requests.cpu == "1"
