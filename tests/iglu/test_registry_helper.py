"""The static Iglu registry test helper behaves like a static registry, also from a thread."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.helpers.iglu_registry import iglu_schema, serving_in_thread

URI = "iglu:com.acme/thing/jsonschema/1-0-0"


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_threaded_registry_serves_schemas_to_synchronous_code(tmp_path):
    schema = iglu_schema(URI, {"type": "object"})

    with serving_in_thread(tmp_path) as registry:
        registry.add(URI, schema)
        found = fetch(f"{registry.url}/schemas/com.acme/thing/jsonschema/1-0-0")
        missing = fetch(f"{registry.url}/schemas/com.acme/thing/jsonschema/2-0-0")

    assert registry.url.startswith("http://127.0.0.1:")
    assert (found[0], json.loads(found[1])) == (200, schema)
    assert missing[0] == 404
    assert len(registry.requests) == 2


@pytest.mark.parametrize("path", ["../secret", "com.acme/../../secret"])
def test_paths_outside_the_registry_are_not_served(tmp_path, path):
    (tmp_path / "secret").write_text("{}")

    with serving_in_thread(tmp_path / "registry") as registry:
        status, _ = fetch(f"{registry.url}/schemas/{path}")

    assert status == 404


def test_schema_helper_adds_meta_schema_and_matching_self():
    schema = iglu_schema(URI, {"type": "object"})

    assert schema == {
        "$schema": (
            "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/"
            "1-0-0#"
        ),
        "self": {"vendor": "com.acme", "name": "thing", "format": "jsonschema", "version": "1-0-0"},
        "type": "object",
    }
