"""Indexes shaped as a sandbox's sinks write them, in a real Elasticsearch: the sinks' own
index templates and documents (``snowplow_pipeline.sink``), so the queries of ``sandbox
events`` meet the same mappings as in a cluster."""

from __future__ import annotations

import json
import uuid

import elasticsearch

from snowplow_pipeline import badrows
from snowplow_pipeline.sink import documents, templates
from tests.sink import events

TEMPLATE_LIMITS = {"shards": 1, "replicas": 0, "total_fields_limit": 1000}
CLICK = "iglu:com.acme/click/jsonschema/1-0-0"
USER = "iglu:com.acme/user/jsonschema/1-0-0"


def fill(url: str, *, good_index: str, bad_index: str) -> None:
    """Two page views, one click with a user entity, and two bad rows."""
    client = elasticsearch.Elasticsearch(url)
    keyword = templates.MAX_KEYWORD_CHARS
    client.indices.put_index_template(
        name=templates.template_name(good_index),
        body=templates.good_template(
            index=good_index, keyword_max_chars=keyword, **TEMPLATE_LIMITS
        ),
    )
    client.indices.put_index_template(
        name=templates.template_name(bad_index),
        body=templates.bad_template(index=bad_index, keyword_max_chars=keyword, **TEMPLATE_LIMITS),
    )
    lines = [
        events.enriched_line(collector_tstamp="2024-05-01 10:00:00.000"),
        events.enriched_line(collector_tstamp="2024-05-01 10:00:01.000"),
        events.enriched_line(
            collector_tstamp="2024-05-01 10:00:02.000",
            event="unstruct",
            event_vendor="com.acme",
            event_name="click",
            event_format="jsonschema",
            event_version="1-0-0",
            unstruct_event=events.unstruct(events.sdj(CLICK, {"target": "buy"})),
            contexts=events.contexts(events.sdj(USER, {"id": "u1"})),
        ),
    ]
    for line in lines:
        _index(client, documents.from_enriched(line, index=good_index))
    rows = [
        badrows.generic_error(component="enrich", errors=["boom"], payload="raw text"),
        badrows.tracker_protocol_violations(
            component="enrich",
            vendor="com.acme",
            version="v1",
            messages=[{"error": "missing e"}],
            payload={
                "vendor": "com.acme",
                "version": "v1",
                "querystring": [],
                "id": str(uuid.uuid4()),
            },
        ),
    ]
    for row in rows:
        _index(client, documents.from_bad_row(badrows.serialize(row), index=bad_index))
    client.indices.refresh(index=f"{good_index},{bad_index}")
    client.close()


def _index(client: elasticsearch.Elasticsearch, document: documents.Document) -> None:
    client.index(index=document.index, id=document.id, document=json.loads(document.source))
