"""What ended up in the ``good`` and ``bad`` indexes, matched to the events that were sent.

A good document's id is its ``event_id`` (the sink indexes by it), so membership in ``good`` is
exact. A bad row carries the event it failed on somewhere in its payload (the partially
enriched event, the raw parameters, or the truncated body of a size violation): any event id
that was sent and appears anywhere in the row's text marks the row as that event's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

import elasticsearch
from elasticsearch import helpers

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PAGE_SIZE_DOCUMENTS = 2000


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The documents of one set of sent events in each index."""

    good: dict[str, dict[str, Any]]  # event id -> source
    good_versions: dict[str, int]  # event id -> times the document was written
    bad: dict[str, list[dict[str, Any]]]  # event id -> bad rows that name it
    unknown_good: int  # good documents of the app whose id was never sent
    unmatched_bad: int  # bad rows naming no sent event

    def missing(self, sent: Collection[str]) -> list[str]:
        return sorted(set(sent) - set(self.good) - set(self.bad))

    def in_both(self) -> list[str]:
        return sorted(set(self.good) & set(self.bad))

    def bad_duplicates(self) -> dict[str, int]:
        return {event_id: len(rows) for event_id, rows in self.bad.items() if len(rows) > 1}

    def rewritten(self) -> int:
        """Good documents written more than once (a redelivery), still one document each."""
        return sum(1 for version in self.good_versions.values() if version > 1)


def read(
    client: elasticsearch.Elasticsearch,
    *,
    sent: Collection[str],
    good_filter: dict[str, Any] | None = None,
    bad_filter: Callable[[str], bool] = lambda text: True,
) -> Outcome:
    """Read both indexes (refreshed first) and match their documents to ``sent``."""
    wanted = set(sent)
    client.indices.refresh(index="good,bad", ignore_unavailable=True)

    good: dict[str, dict[str, Any]] = {}
    versions: dict[str, int] = {}
    unknown_good = 0
    query = good_filter or {"match_all": {}}
    for hit in _scan(client, "good", query):
        if hit["_id"] in wanted:
            good[hit["_id"]] = hit["_source"]
            versions[hit["_id"]] = hit["_version"]
        else:
            unknown_good += 1

    bad: dict[str, list[dict[str, Any]]] = {}
    unmatched_bad = 0
    for hit in _scan(client, "bad", {"match_all": {}}):
        text = json.dumps(hit["_source"])
        if not bad_filter(text):
            continue
        named = {match for match in UUID.findall(text) if match in wanted}
        if not named:
            unmatched_bad += 1
        for event_id in named:
            bad.setdefault(event_id, []).append(hit["_source"])
    return Outcome(
        good=good,
        good_versions=versions,
        bad=bad,
        unknown_good=unknown_good,
        unmatched_bad=unmatched_bad,
    )


def _scan(
    client: elasticsearch.Elasticsearch, index: str, query: dict[str, Any]
) -> list[dict[str, Any]]:
    if not client.indices.exists(index=index):
        return []
    return list(
        helpers.scan(
            client, index=index, query={"query": query, "version": True}, size=PAGE_SIZE_DOCUMENTS
        )
    )


async def settle(
    client: elasticsearch.Elasticsearch,
    *,
    sent: Collection[str],
    timeout_seconds: float,
    **filters: Any,
) -> Outcome:
    """Poll until every sent event is in an index, then once more after the sinks' flush.

    The extra read catches anything that would still arrive late: a duplicate bad row or a
    document of an event nobody sent.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        outcome = await asyncio.to_thread(read, client, sent=sent, **filters)
        if not outcome.missing(sent):
            break
        if time.monotonic() > deadline:
            return outcome
        await asyncio.sleep(1.0)
    await asyncio.sleep(3.0)
    return await asyncio.to_thread(read, client, sent=sent, **filters)


def describe(outcome: Outcome, sent: Collection[str]) -> str:
    """A one-line account for assertion messages."""
    schemas = Counter(row["schema"].split("/")[1] for rows in outcome.bad.values() for row in rows)
    return (
        f"sent {len(sent)}, good {len(outcome.good)}, bad {len(outcome.bad)} events "
        f"({sum(schemas.values())} rows: {dict(schemas)}), missing {len(outcome.missing(sent))}"
        f" (e.g. {outcome.missing(sent)[:3]}), in both {len(outcome.in_both())}, bad duplicates "
        f"{len(outcome.bad_duplicates())}, unknown good {outcome.unknown_good}, unmatched bad "
        f"{outcome.unmatched_bad}"
    )
