"""The embedded store of the local Mini: the events API's memory.

It keeps the most recent good events (read from enriched TSV lines) and bad rows, up to a
bound, and answers the queries of Snowplow Micro's REST API. Items have Micro's shapes, so
test harnesses written for Micro work unchanged. A good item's ``rawEvent`` is rebuilt from the
enriched event: the store reads the same messages a sink reads and has no access to the raw
request, so its ``parameters`` map is empty and the API path and collector host are null.
"""

from __future__ import annotations

import collections
import json
import logging
from typing import Any

from snowplow_pipeline import badrows, enriched

logger = logging.getLogger(__name__)
event_log = logging.getLogger("snowplow_pipeline.events")


class EventStore:
    def __init__(self, *, max_events: int = 10_000) -> None:
        self._good: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_events)
        self._bad: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_events)

    def add_good(self, line: str) -> None:
        """Store one enriched event; an unreadable line is stored as a bad row instead."""
        try:
            fields = enriched.from_tsv(line)
            event = enriched.to_json(fields)
        except enriched.EnrichedFormatError as exc:
            self.add_bad(
                badrows.loader_parsing_error(
                    component="local-store", errors=exc.errors, payload=line
                )
            )
            return
        item = good_item(fields, event)
        self._good.append(item)
        event_log.info(
            "GOOD id:%s app_id:%s type:%s%s",
            event.get("event_id"),
            event.get("app_id"),
            item["eventType"],
            f" ({item['schema']})" if item["schema"] else "",
        )

    def add_bad(self, row: dict[str, Any]) -> None:
        item = bad_item(row)
        self._bad.append(item)
        event_log.info("BAD %s", " | ".join(item["errors"][:-1]))

    def counts(self) -> dict[str, int]:
        return {
            "total": len(self._good) + len(self._bad),
            "good": len(self._good),
            "bad": len(self._bad),
        }

    def reset(self) -> None:
        self._good.clear()
        self._bad.clear()

    def good(
        self,
        *,
        event_type: str | None = None,
        schema: str | None = None,
        contexts: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Good events, newest first, matching every filter given."""
        wanted = set(contexts or [])
        matches = [
            item
            for item in reversed(self._good)
            if (event_type is None or item["eventType"] == event_type)
            and (schema is None or item["schema"] == schema)
            and wanted.issubset(item["contexts"])
        ]
        return matches[:limit] if limit is not None else matches

    def bad(
        self, *, vendor: str | None = None, version: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Bad rows, newest first, optionally only those sent to one ``vendor``/``version``."""
        matches = [
            item
            for item in reversed(self._bad)
            if (vendor is None or _api(item)[0] == vendor)
            and (version is None or _api(item)[1] == version)
        ]
        return matches[:limit] if limit is not None else matches


def good_item(fields: dict[str, str], event: dict[str, Any]) -> dict[str, Any]:
    """A good event in the shape of Micro's ``/micro/good`` items."""
    schema = None
    if fields.get("event_vendor"):
        schema = (
            f"iglu:{fields['event_vendor']}/{fields['event_name']}/"
            f"{fields['event_format']}/{fields['event_version']}"
        )
    contexts = [
        entity["schema"] for entity in json.loads(fields.get("contexts") or '{"data": []}')["data"]
    ]
    return {
        "rawEvent": {
            "api": {"vendor": None, "version": None},
            "parameters": {},
            "contentType": None,
            "source": {"name": fields.get("v_collector"), "encoding": "UTF-8", "hostname": None},
            "context": {
                "timestamp": event.get("collector_tstamp"),
                "ipAddress": fields.get("user_ipaddress"),
                "useragent": fields.get("useragent"),
                "refererUri": fields.get("page_referrer"),
                "headers": [],
                "userId": fields.get("network_userid"),
            },
        },
        "eventType": fields.get("event"),
        "schema": schema,
        "contexts": contexts,
        "event": event,
        "incomplete": False,
    }


def bad_item(row: dict[str, Any]) -> dict[str, Any]:
    """A bad row in the shape of Micro's ``/micro/bad`` items, with the row itself."""
    payload = row.get("data", {}).get("payload")
    is_enrichment_payload = isinstance(payload, dict) and "raw" in payload
    collector_payload = payload if isinstance(payload, dict) and "querystring" in payload else None
    return {
        "collectorPayload": collector_payload,
        "rawEvent": payload["raw"] if is_enrichment_payload else None,
        "errors": [*badrows.describe(row), json.dumps(row, separators=(",", ":"))],
        "badRow": row,
    }


def _api(item: dict[str, Any]) -> tuple[str | None, str | None]:
    source = item["collectorPayload"] or item["rawEvent"] or {}
    return source.get("vendor"), source.get("version")
