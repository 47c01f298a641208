"""Fixtures for enrich tests: a resolver on a local schema folder, and payload builders."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from snowplow_pipeline import payloads
from snowplow_pipeline.enrich import processing
from snowplow_pipeline.iglu import resolving

COLLECTOR = "snowplow-mini-collector-0.1.0-memory"
COLLECTED_MS = 1_700_000_000_000  # 2023-11-14 22:13:20.000 UTC

CHECKOUT = {
    "$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
    "self": {"vendor": "com.acme", "name": "checkout", "format": "jsonschema", "version": "1-0-0"},
    "type": "object",
    "properties": {"price": {"type": "number", "minimum": 0}, "sku": {"type": "string"}},
    "required": ["price"],
    "additionalProperties": False,
}
USER = {
    "$schema": "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
    "self": {"vendor": "com.acme", "name": "user", "format": "jsonschema", "version": "1-0-0"},
    "type": "object",
    "properties": {"id": {"type": "string", "maxLength": 10}, "plan": {"enum": ["free", "pro"]}},
    "required": ["id"],
}


def write_schema(folder: Path, schema: dict[str, Any]) -> None:
    s = schema["self"]
    path = folder / "schemas" / s["vendor"] / s["name"] / s["format"] / s["version"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema))


@pytest.fixture
def schema_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "iglu"
    write_schema(folder, CHECKOUT)
    write_schema(folder, USER)
    return folder


@pytest.fixture
async def enricher(schema_folder: Path) -> AsyncIterator[processing.Enricher]:
    config = {
        "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
        "data": {
            "cacheSize": 100,
            "cacheTtl": 60,
            "repositories": [
                {
                    "name": "Test schemas",
                    "priority": 0,
                    "vendorPrefixes": ["com.acme"],
                    "connection": {"embedded": {"path": str(schema_folder)}},
                },
            ],
        },
    }
    resolver = resolving.Resolver.from_config(config)
    yield processing.Enricher(resolver=resolver)
    await resolver.close()


def get_payload(
    parameters: dict[str, str] | str,
    *,
    path: str = "/i",
    headers: list[str] | None = None,
    referer: str | None = None,
    nuid: str | None = "2c2ae7e6-3b5a-4a1f-9d3f-0c39a6a3c001",
) -> bytes:
    query = parameters if isinstance(parameters, str) else urllib.parse.urlencode(parameters)
    return payloads.serialize(
        payloads.CollectorPayload(
            ip_address="203.0.113.9",
            timestamp_ms=COLLECTED_MS,
            collector=COLLECTOR,
            path=path,
            querystring=query,
            user_agent="Mozilla/5.0 (test)",
            referer_uri=referer,
            headers=headers or [],
            network_user_id=nuid,
            hostname="collector.test",
        )
    )


def post_payload(
    body: Any,
    *,
    content_type: str = "application/json; charset=utf-8",
    query: str | None = None,
    path: str = "/com.snowplowanalytics.snowplow/tp2",
) -> bytes:
    text = body if isinstance(body, str) else json.dumps(body)
    return payloads.serialize(
        payloads.CollectorPayload(
            ip_address="203.0.113.9",
            timestamp_ms=COLLECTED_MS,
            collector=COLLECTOR,
            path=path,
            querystring=query,
            body=text,
            content_type=content_type,
            network_user_id="2c2ae7e6-3b5a-4a1f-9d3f-0c39a6a3c001",
        )
    )


def payload_data(*events: dict[str, str]) -> dict[str, Any]:
    return {
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": list(events),
    }


def sdj(schema: str, data: Any) -> dict[str, Any]:
    return {"schema": schema, "data": data}


def unstruct(inner: dict[str, Any]) -> str:
    return json.dumps(
        sdj("iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0", inner)
    )


def contexts(*entities: dict[str, Any]) -> str:
    return json.dumps(
        sdj("iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0", list(entities))
    )
