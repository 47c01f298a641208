"""Resolver configs: standard Snowplow documents in, every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from snowplow_pipeline.iglu import configs

SCHEMA = "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3"


def config_with(**data: object) -> dict:
    return {"schema": SCHEMA, "data": data}


def test_standard_config_is_read_into_repositories():
    config = config_with(
        cacheSize=500,
        cacheTtl=600,
        repositories=[
            {
                "name": "Iglu Central",
                "priority": 0,
                "vendorPrefixes": ["com.snowplowanalytics"],
                "connection": {"http": {"uri": "http://iglucentral.com"}},
            },
            {
                "name": "Company server",
                "priority": 5,
                "vendorPrefixes": [],
                "connection": {"http": {"uri": "https://iglu.acme.test/api", "apikey": "k"}},
            },
            {
                "name": "Local",
                "priority": 1,
                "vendorPrefixes": [],
                "connection": {"embedded": {"path": "schemas-here"}},
            },
        ],
    )

    parsed = configs.parse(config, base_dir=Path("/etc/mini"))

    assert parsed.cache_size == 500
    assert parsed.cache_ttl_seconds == 600.0
    assert parsed.repositories == (
        configs.RepositoryConfig(
            name="Iglu Central",
            priority=0.0,
            vendor_prefixes=("com.snowplowanalytics",),
            connection=configs.HttpConnection(uri="http://iglucentral.com"),
        ),
        configs.RepositoryConfig(
            name="Company server",
            priority=5.0,
            vendor_prefixes=(),
            connection=configs.HttpConnection(uri="https://iglu.acme.test/api", apikey="k"),
        ),
        configs.RepositoryConfig(
            name="Local",
            priority=1.0,
            vendor_prefixes=(),
            connection=configs.EmbeddedConnection(path=Path("/etc/mini/schemas-here")),
        ),
    )


@pytest.mark.parametrize("version", ["1-0-0", "1-0-1", "1-0-2", "1-0-3"])
def test_every_resolver_config_version_up_to_1_0_3_is_accepted(version):
    config = {
        "schema": f"iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/{version}",
        "data": {"cacheSize": 0, "repositories": []},
    }

    parsed = configs.parse(config)

    assert (parsed.cache_size, parsed.cache_ttl_seconds, parsed.repositories) == (0, None, ())


def test_null_cache_ttl_means_no_expiry():
    parsed = configs.parse(config_with(cacheSize=10, cacheTtl=None, repositories=[]))

    assert parsed.cache_ttl_seconds is None


def test_every_problem_is_listed_with_its_json_path():
    config = {
        "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-1-0",
        "data": {
            "cacheSize": "lots",
            "cacheTtl": -5,
            "repositories": [
                {
                    "name": "fine",
                    "priority": 0,
                    "vendorPrefixes": [],
                    "connection": {"embedded": {"path": "/x"}},
                },
                {
                    "name": "",
                    "priority": "x",
                    "vendorPrefixes": ["com.acme", 7],
                    "connection": {"http": {"uri": "ftp://files"}, "embedded": {"path": "/y"}},
                },
                {"name": "no connection", "priority": 1, "vendorPrefixes": []},
                {
                    "name": "bad http",
                    "priority": 1,
                    "vendorPrefixes": "com.acme",
                    "connection": {"http": {"apikey": 12}},
                },
                "not an object",
            ],
        },
    }

    with pytest.raises(configs.ResolverConfigError) as caught:
        configs.parse(config)

    assert caught.value.problems == [
        'schema: got "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-1-0", '
        "expected iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-0 to 1-0-3",
        'data.cacheSize: got "lots", expected a number of schemas, 0 or more',
        "data.cacheTtl: got -5, expected a number of seconds above 0, or null",
        'data.repositories[1].name: got "", expected a non-empty string',
        'data.repositories[1].priority: got "x", expected a number',
        "data.repositories[1].vendorPrefixes[1]: got 7, expected a string",
        'data.repositories[1].connection: got {"http": {"uri": "ftp://files"}, "embedded": '
        '{"path": "/y"}}, expected an object with exactly one of "http" or "embedded"',
        'data.repositories[2].connection: missing, expected an object with exactly one of "http" '
        'or "embedded"',
        'data.repositories[3].vendorPrefixes: got "com.acme", expected an array of vendor prefixes '
        "(strings)",
        "data.repositories[3].connection.http.uri: missing, expected an http:// or https:// URL",
        "data.repositories[3].connection.http.apikey: got 12, expected a string or null",
        'data.repositories[4]: got "not an object", expected an object with name, priority, '
        "vendorPrefixes, connection",
    ]
    assert str(caught.value).startswith("invalid Iglu resolver config:\n  schema: got")


def test_missing_required_fields_are_reported_as_missing():
    with pytest.raises(configs.ResolverConfigError) as caught:
        configs.parse({"schema": SCHEMA, "data": {}})

    assert caught.value.problems == [
        "data.cacheSize: missing, expected a number of schemas, 0 or more",
        "data.repositories: missing, expected an array of repositories",
    ]


def test_config_that_is_not_an_object_is_rejected():
    with pytest.raises(configs.ResolverConfigError) as caught:
        configs.parse([1, 2])

    assert caught.value.problems == [
        "config: got [1, 2], expected a JSON object with schema and data"
    ]


def test_config_text_that_is_not_json_names_its_source():
    with pytest.raises(configs.ResolverConfigError) as caught:
        configs.parse_text("{nope", source="/etc/resolver.json")

    assert caught.value.problems[0].startswith("/etc/resolver.json: not valid JSON (")
