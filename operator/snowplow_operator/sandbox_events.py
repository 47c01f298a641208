"""The events of a sandbox, read from its Elasticsearch in the shape of the local Mini's API.

In a cluster a sandbox's good events and bad rows live in its Elasticsearch, in the ``good``
and ``bad`` indexes the sinks write. ``sandbox events`` answers with the items of the local
Mini's events API (``/micro/all``, ``/micro/good``, ``/micro/bad``, see
``snowplow_pipeline.events_api``), so that a CI job can assert on either the same way.

Elasticsearch is reached through the API server's service proxy
(``/api/v1/namespaces/<ns>/services/<mini>-elasticsearch:9200/proxy/``), which needs no port
forward and only RBAC ``get`` on ``services/proxy``; or, with an explicit URL, directly (a
port-forward, or a test's own Elasticsearch).

Differences from the local Mini, because an indexed document is not the enriched TSV line:
a good item's ``contexts`` lists the entity fields of the document
(``contexts_com_acme_user_1``), not full schema URIs, and the ``contexts`` filter matches on
those fields, so it cannot tell ``1-0-0`` from ``1-0-1`` of one entity. A bad item's bad row is
the document, with the sink's renamed fields (``payload_str``, ``errors_list``) put back.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import kubernetes
import urllib3

from snowplow_pipeline import enriched, store

logger = logging.getLogger(__name__)

ELASTICSEARCH_PORT = 9200
REQUEST_TIMEOUT_SECONDS = 30.0
MAX_ITEMS = 10_000
_IGLU_URI = re.compile(r"^iglu:([^/]+)/([^/]+)/([^/]+)/([^/]+)$")
# The sink renames these when their JSON type varies between bad-row types.
_RENAMED_SUFFIXES = ("_str", "_list")
_RENAMED_KEYS = frozenset({"failure", "payload", "error", "errors", "message", "messages"})

Post = Callable[[str, dict[str, Any]], dict[str, Any] | None]


class SearchError(Exception):
    """Elasticsearch could not be asked or refused the query."""


class FilterError(ValueError):
    """A filter cannot be turned into a query (an Iglu URI that is not one)."""


def direct(url: str) -> Post:
    """POST to an Elasticsearch at ``url``; ``None`` when the index does not exist."""
    base = url.rstrip("/")

    def post(path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        request = urllib.request.Request(
            f"{base}/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise SearchError(f"Elasticsearch at {base} answered {exc.code} to {path}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SearchError(f"cannot reach Elasticsearch at {base}: {exc}") from exc

    return post


def through_service_proxy(
    api: kubernetes.client.ApiClient, *, namespace: str, service: str
) -> Post:
    """POST through the API server's proxy to the sandbox's Elasticsearch Service."""
    root = f"/api/v1/namespaces/{namespace}/services/{service}:{ELASTICSEARCH_PORT}/proxy"

    def post(path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = api.call_api(
                f"{root}/{path}",
                "POST",
                header_params={"Content-Type": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except kubernetes.client.ApiException as exc:
            text = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else ""
            text = text or str(exc.body or "")
            if exc.status == 404 and "index_not_found" in text:
                return None
            raise SearchError(
                f"the service proxy to {service} answered {exc.status}: {text[:200]}"
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise SearchError(f"cannot reach the API server's service proxy: {exc}") from exc
        return json.loads(response.data)

    return post


def counts(post: Post, *, good_index: str, bad_index: str) -> dict[str, int]:
    """``/micro/all``: how many good events and bad rows the sandbox holds."""
    good = _count(post, good_index)
    bad = _count(post, bad_index)
    return {"total": good + bad, "good": good, "bad": bad}


def good(
    post: Post,
    *,
    index: str,
    event_type: str | None = None,
    schema: str | None = None,
    contexts: list[str] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """``/micro/good``: good events, newest first, matching every filter given."""
    query = good_query(event_type=event_type, schema=schema, contexts=contexts)
    body = {
        "query": query,
        "size": MAX_ITEMS if limit is None else min(limit, MAX_ITEMS),
        "sort": [{"collector_tstamp": {"order": "desc", "unmapped_type": "date"}}],
    }
    return [good_item(hit["_source"]) for hit in _hits(post, index, body)]


def bad(
    post: Post,
    *,
    index: str,
    vendor: str | None = None,
    version: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """``/micro/bad``: bad rows, newest first, optionally only those of one API vendor/version.

    The vendor and version filters apply after the query (they live in the payload), so with
    them ``limit`` counts matching rows among the newest ``MAX_ITEMS``.
    """
    body = {
        "query": {"match_all": {}},
        "size": MAX_ITEMS if (limit is None or vendor or version) else min(limit, MAX_ITEMS),
        "sort": [{"data.failure.timestamp": {"order": "desc", "unmapped_type": "date"}}],
    }
    items = [store.bad_item(unflatten(hit["_source"])) for hit in _hits(post, index, body)]
    matches = [
        item
        for item in items
        if (vendor is None or _api(item)[0] == vendor)
        and (version is None or _api(item)[1] == version)
    ]
    return matches[:limit] if limit is not None else matches


def good_query(
    *, event_type: str | None, schema: str | None, contexts: list[str] | None
) -> dict[str, Any]:
    """The Elasticsearch query of the good-event filters; ``FilterError`` for a bad URI."""
    terms: list[dict[str, Any]] = []
    if event_type is not None:
        terms.append({"term": {"event": event_type}})
    if schema is not None:
        match = _IGLU_URI.match(schema)
        if not match:
            expected = "expected iglu:vendor/name/format/1-0-0"
            raise FilterError(f"schema: got {schema[:80]!r}, {expected}")
        fields = ("event_vendor", "event_name", "event_format", "event_version")
        pairs = zip(fields, match.groups(), strict=True)
        terms += [{"term": {field: value}} for field, value in pairs]
    for uri in contexts or []:
        try:
            key = enriched.entity_key("contexts", uri)
        except ValueError as exc:
            raise FilterError(f"contexts: {exc}") from exc
        terms.append({"exists": {"field": key}})
    return {"bool": {"filter": terms}} if terms else {"match_all": {}}


def good_item(document: dict[str, Any]) -> dict[str, Any]:
    """An indexed enriched event as a ``/micro/good`` item."""
    fields = {key: value for key, value in document.items() if isinstance(value, str)}
    item = store.good_item(fields, document)
    item["contexts"] = sorted(key for key in document if key.startswith("contexts_"))
    return item


def unflatten(row: dict[str, Any]) -> dict[str, Any]:
    """Undo the sink's renames (``payload_str`` → ``payload``) in an indexed bad row."""
    if not isinstance(row.get("data"), dict):
        return row
    return {**row, "data": _unflatten_object(row["data"])}


def _unflatten_object(value: dict[str, Any]) -> dict[str, Any]:
    output: dict[str, Any] = {}
    for key, inner in value.items():
        base = key
        for suffix in _RENAMED_SUFFIXES:
            if key.endswith(suffix) and key.removesuffix(suffix) in _RENAMED_KEYS:
                base = key.removesuffix(suffix)
        output[base] = _unflatten_value(inner)
    return output


def _unflatten_value(value: Any) -> Any:
    if isinstance(value, dict):
        return _unflatten_object(value)
    if isinstance(value, list):
        return [_unflatten_value(item) for item in value]
    return value


def _count(post: Post, index: str) -> int:
    answer = post(f"{index}/_count", {"query": {"match_all": {}}})
    return 0 if answer is None else int(answer["count"])


def _hits(post: Post, index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    answer = post(f"{index}/_search", body)
    return [] if answer is None else answer["hits"]["hits"]


def _api(item: dict[str, Any]) -> tuple[str | None, str | None]:
    source = item["collectorPayload"] or item["rawEvent"] or {}
    return source.get("vendor"), source.get("version")
