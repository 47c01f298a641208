"""Enrich throughput on one core: a page view with two validated entities.

Run: ``taskset -c 0 .venv/bin/python benchmarks/enrich_throughput.py [--events N]``

Prints events/s for the whole of ``Enricher.process`` and for its three phases measured alone
on the same event: parsing (Thrift payload, query string, atomic fields), validation (the
entities resolved from a warm cache and validated) and serialization (the 131-field TSV).
The baseline, measured in the same run, is the same page view without entities, which shows
what validation costs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path

from snowplow_pipeline import enriched, payloads
from snowplow_pipeline.enrich import adapters, processing, selfdescribing, transform
from snowplow_pipeline.iglu import resolving

SELF_DESC = (
    "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"
)
USER = {
    "$schema": SELF_DESC,
    "self": {"vendor": "com.acme", "name": "user", "format": "jsonschema", "version": "1-0-0"},
    "type": "object",
    "properties": {
        "id": {"type": "string", "maxLength": 64},
        "plan": {"enum": ["free", "pro"]},
        "age": {"type": ["integer", "null"]},
    },
    "required": ["id"],
    "additionalProperties": False,
}
PAGE_VIEW = {
    "e": "pv", "p": "web", "tv": "js-3.24.0", "aid": "shop",
    "eid": "0d4e6a52-5b0e-4a7a-9a0f-6d2b1d3c4e5f",
    "url": "https://www.shop.test/boots?colour=red", "page": "Red boots",
    "refr": "https://search.test/?q=boots", "dtm": "1700000000000", "stm": "1700000000250",
    "res": "1920x1080", "vp": "1280x720", "cookie": "1", "lang": "en-GB", "duid": "d-1",
    "vid": "3", "sid": "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f",
}  # fmt: skip


def entities() -> str:
    wrapper = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [
            {
                "schema": "iglu:com.acme/user/jsonschema/1-0-0",
                "data": {"id": "u-1", "plan": "pro", "age": 41},
            },
            {
                "schema": "iglu:com.acme/user/jsonschema/1-0-0",
                "data": {"id": "u-2", "plan": "free", "age": None},
            },
        ],
    }
    return base64.urlsafe_b64encode(json.dumps(wrapper).encode()).decode().rstrip("=")


def message(parameters: dict[str, str]) -> bytes:
    return payloads.serialize(
        payloads.CollectorPayload(
            ip_address="203.0.113.9",
            timestamp_ms=1700000000500,
            collector="bench",
            path="/com.snowplowanalytics.snowplow/tp2",
            querystring=urllib.parse.urlencode(parameters),
            user_agent="Mozilla/5.0 (bench)",
            network_user_id="7b1e5f2a-9c3d-4e8f-a0b1-c2d3e4f5a6b7",
        )
    )


async def rate(events: int, step: Callable[[], Awaitable[object]]) -> float:
    for _ in range(min(events // 10, 200)):  # warm caches
        await step()
    started = time.perf_counter()
    for _ in range(events):
        await step()
    return events / (time.perf_counter() - started)


async def main(events: int) -> None:
    folder = Path(tempfile.mkdtemp())
    path = folder / "schemas/com.acme/user/jsonschema/1-0-0"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(USER))
    resolver = resolving.Resolver.from_config(
        {
            "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
            "data": {
                "cacheSize": 500,
                "cacheTtl": 600,
                "repositories": [
                    {
                        "name": "bench",
                        "priority": 0,
                        "vendorPrefixes": ["com.acme"],
                        "connection": {"embedded": {"path": str(folder)}},
                    }
                ],
            },
        }
    )
    enricher = processing.Enricher(resolver=resolver)
    with_entities = message({**PAGE_VIEW, "cx": entities()})
    without_entities = message(PAGE_VIEW)
    outcome = await enricher.process(with_entities)
    assert outcome.good and not outcome.bad, outcome.bad
    fields = enriched.from_tsv(outcome.good[0])
    [raw_event] = adapters.to_raw_events(payloads.deserialize(with_entities))

    async def parse() -> object:
        [event] = adapters.to_raw_events(payloads.deserialize(with_entities))
        return transform.transform(event.parameters)

    async def validate() -> object:
        return await selfdescribing.extract(raw_event.parameters, resolver)

    async def serialize() -> object:
        return enriched.to_tsv(fields)

    rows = [
        (
            "baseline: page view, no entities",
            await rate(events, lambda: enricher.process(without_entities)),
        ),
        (
            "page view + 2 validated entities",
            await rate(events, lambda: enricher.process(with_entities)),
        ),
        ("  phase: parsing", await rate(events, parse)),
        ("  phase: validation", await rate(events, validate)),
        ("  phase: serialization", await rate(events, serialize)),
    ]
    await resolver.close()
    total = rows[1][1]
    print(f"{'measure':40} {'events/s':>10} {'µs/event':>9} {'share':>7}")
    for name, per_second in rows:
        share = f"{total / per_second:6.0%}" if name.startswith("  phase") else ""
        print(f"{name:40} {per_second:10.0f} {1e6 / per_second:9.1f} {share:>7}")
    phases_seconds = sum(1 / per_second for name, per_second in rows if name.startswith("  "))
    other = 1 / total - phases_seconds
    print(f"{'  rest: request fields, entity JSON out':40} {'':>10} {other * 1e6:9.1f} "
          f"{other * total:6.0%}")
    print(f"ratio to baseline: {total / rows[0][1]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    asyncio.run(main(parser.parse_args().events))
