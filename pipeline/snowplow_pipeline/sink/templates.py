"""Index templates for the ``good`` and ``bad`` indexes. Pure: settings in, request bodies out.

Choices, each answering a problem Mini users reported:

* Strings are ``keyword`` by default (exact values, aggregations in Kibana) with
  ``ignore_above``: a longer string stays in ``_source`` but is not indexed, so a huge bad-row
  payload can never fail with Lucene's "immense term" error. Upstream Mini used a ``keyword``
  tokenizer with a ``length`` filter instead; both live in the ``analysis-common`` module,
  which minimal Elasticsearch distributions do not ship, while ``ignore_above`` is core. It
  counts Java characters (UTF-16 code units), each at most 3 bytes in UTF-8 (a 4-byte
  character is 2 units), so the default, 10922, is the longest limit that keeps every indexed
  string within Lucene's 32766-byte term limit.
* The atomic fields of an enriched event get their types up front (timestamps as ``date``,
  numbers, booleans, ``geo_location`` as ``geo_point``); strings in entities that look like
  dates become dates through Elasticsearch's date detection.
* A field limit keeps many distinct entities from bloating the cluster state. A document that
  would pass the limit is refused by Elasticsearch, and the sink routes it with that reason to
  ``BadElasticsearchEvents`` like any other rejected document: it is never silently dropped
  nor partly indexed.
"""

from __future__ import annotations

from typing import Any

from snowplow_pipeline import enriched

LUCENE_MAX_TERM_BYTES = 32766
MAX_KEYWORD_CHARS = LUCENE_MAX_TERM_BYTES // 3  # UTF-16 units, at most 3 UTF-8 bytes each
TEMPLATE_PRIORITY = 500

_SKIPPED_ATOMIC_FIELDS = enriched.CONTEXTS_FIELDS | {"unstruct_event"}


def template_name(index: str) -> str:
    return f"snowplow-mini-{index}"


def good_template(
    *, index: str, shards: int, replicas: int, total_fields_limit: int, keyword_max_chars: int
) -> dict[str, Any]:
    """The composable template of the enriched-events index."""
    return _template(
        index=index,
        settings=_index_settings(
            shards=shards, replicas=replicas, total_fields_limit=total_fields_limit
        ),
        mappings={
            "dynamic_templates": [_strings_as_keywords(keyword_max_chars)],
            "properties": atomic_properties(keyword_max_chars),
        },
    )


def bad_template(
    *, index: str, shards: int, replicas: int, total_fields_limit: int, keyword_max_chars: int
) -> dict[str, Any]:
    """The composable template of the bad-rows index; ``data.failure.timestamp`` is the time."""
    keyword = _keyword(keyword_max_chars)
    return _template(
        index=index,
        settings=_index_settings(
            shards=shards, replicas=replicas, total_fields_limit=total_fields_limit
        ),
        mappings={
            "dynamic_templates": [_strings_as_keywords(keyword_max_chars)],
            "properties": {
                "schema": keyword,
                "data": {
                    "properties": {
                        "failure": {"properties": {"timestamp": {"type": "date"}}},
                        "payload_str": keyword,
                    }
                },
            },
        },
    )


def atomic_properties(keyword_max_chars: int) -> dict[str, Any]:
    """The mapping of every atomic field of an enriched event, plus ``geo_location``."""
    properties: dict[str, Any] = {"geo_location": {"type": "geo_point"}}
    for name in enriched.FIELDS:
        if name not in _SKIPPED_ATOMIC_FIELDS:
            properties[name] = _atomic_type(name, keyword_max_chars)
    return properties


def _atomic_type(name: str, keyword_max_chars: int) -> dict[str, Any]:
    if name in enriched.TIMESTAMP_FIELDS:
        return {"type": "date"}
    if name in enriched.INTEGER_FIELDS:
        return {"type": "long"}
    if name in enriched.DECIMAL_FIELDS:
        return {"type": "double"}
    if name in enriched.BOOLEAN_FIELDS:
        return {"type": "boolean"}
    return _keyword(keyword_max_chars)


def _template(*, index: str, settings: dict[str, Any], mappings: dict[str, Any]) -> dict[str, Any]:
    return {
        "index_patterns": [index],
        "priority": TEMPLATE_PRIORITY,
        "template": {"settings": settings, "mappings": mappings},
        "_meta": {"managed_by": "snowplow-mini sink"},
    }


def _index_settings(*, shards: int, replicas: int, total_fields_limit: int) -> dict[str, Any]:
    return {
        "index.number_of_shards": shards,
        "index.number_of_replicas": replicas,
        "index.mapping.total_fields.limit": total_fields_limit,
    }


def _strings_as_keywords(keyword_max_chars: int) -> dict[str, Any]:
    return {
        "strings_as_keywords": {
            "match_mapping_type": "string",
            "mapping": _keyword(keyword_max_chars),
        }
    }


def _keyword(keyword_max_chars: int) -> dict[str, Any]:
    return {"type": "keyword", "ignore_above": keyword_max_chars}
