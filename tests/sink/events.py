"""Builders of the messages the sinks consume: enriched TSV lines and bad rows."""

from __future__ import annotations

import json
import uuid
from typing import Any

from snowplow_pipeline import enriched

PAGE_VIEW = {
    "app_id": "shop",
    "platform": "web",
    "etl_tstamp": "2024-05-01 10:00:01.500",
    "collector_tstamp": "2024-05-01 10:00:00.123",
    "dvce_created_tstamp": "2024-05-01 09:59:59.900",
    "event": "page_view",
    "v_tracker": "js-3.0.0",
    "v_collector": "snowplow-mini-collector-0.1.0",
    "v_etl": "snowplow-mini-enrich-0.1.0",
    "domain_sessionidx": "3",
    "geo_latitude": "52.52",
    "geo_longitude": "13.405",
    "page_url": "https://shop.example/cart",
    "page_urlport": "443",
    "br_cookies": "1",
    "dvce_ismobile": "0",
    "se_value": "2.5",
}


def sdj(schema: str, data: Any) -> dict[str, Any]:
    return {"schema": schema, "data": data}


def contexts(*entities: dict[str, Any]) -> str:
    return json.dumps(
        sdj("iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0", list(entities))
    )


def unstruct(event: dict[str, Any]) -> str:
    return json.dumps(
        sdj("iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0", event)
    )


def enriched_line(event_id: str | None = None, **fields: str) -> bytes:
    """A valid enriched TSV line: ``PAGE_VIEW`` with ``fields`` over it."""
    values = {**PAGE_VIEW, "event_id": event_id or str(uuid.uuid4()), **fields}
    return enriched.to_tsv(values).encode()


def event_ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]
