"""Benchmark: documents per second into Elasticsearch, the sink against ``helpers.async_bulk``.

Both index the same prepared documents (enriched events turned into their JSON shape once,
before any timing) into fresh indexes made from the sink's template, on the same node, in the
same run. The sink is driven as the NSQ transport drives it: ``--in-flight`` concurrent
handlers, each awaiting its own document's acknowledgement. ``async_bulk`` gets the same
serialized sources, chunks of the same size, and runs its requests one after another, as it
does. Rounds alternate between the two and the median of each is reported, so a slow moment of
the node does not favour either side. A third figure, for information, is the whole good-sink
handler from TSV line to acknowledged document (conversion included); a fourth is the sink
held to one bulk request at a time, like ``async_bulk``, to show what the concurrency buys.

Run: ``.venv/bin/python benchmarks/sink_bulk.py`` (starts a private Elasticsearch from the
test cache on 127.0.0.1) or with ``--elasticsearch-url http://127.0.0.1:9200``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import pathlib
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import elasticsearch
from elasticsearch import helpers

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from snowplow_pipeline import enriched
from snowplow_pipeline.sink import batching, documents, handling, indexing, templates
from snowplow_pipeline.sink.metrics import SinkMetrics

CHUNK_DOCUMENTS = 500


def enriched_lines(count: int) -> list[bytes]:
    """Realistic page views with two entities each, about 1.3 kB of JSON per document."""
    base = {
        "app_id": "shop", "platform": "web", "event": "page_view",
        "etl_tstamp": "2024-05-01 10:00:01.500", "collector_tstamp": "2024-05-01 10:00:00.123",
        "dvce_created_tstamp": "2024-05-01 09:59:59.900", "v_tracker": "js-3.0.0",
        "v_collector": "ssc-3.0.0-nsq", "v_etl": "snowplow-mini-enrich-0.1.0",
        "user_ipaddress": "10.0.0.1", "domain_userid": "b1a2c3d4-0000-4000-8000-000000000001",
        "domain_sessionidx": "3", "geo_latitude": "52.52", "geo_longitude": "13.405",
        "page_url": "https://shop.example/cart?item=42", "page_title": "Your cart",
        "useragent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0", "br_cookies": "1",
        "br_viewwidth": "1280", "br_viewheight": "720", "dvce_ismobile": "0",
        "derived_tstamp": "2024-05-01 10:00:00.000", "event_vendor": "com.snowplowanalytics",
        "event_name": "page_view", "event_format": "jsonschema", "event_version": "1-0-0",
    }  # fmt: skip
    entities = json.dumps({
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [
            {"schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
             "data": {"id": "a6a2bf54-1e6a-4bb2-a9f6-3b3e3a2d1e01"}},
            {"schema": "iglu:com.acme/cart/jsonschema/1-0-0",
             "data": {"items": 3, "total": 42.5, "currency": "EUR", "coupon": "SPRING"}},
        ],
    })  # fmt: skip
    return [
        enriched.to_tsv({**base, "event_id": str(uuid.uuid4()), "contexts": entities}).encode()
        for _ in range(count)
    ]


async def fresh_index(client: elasticsearch.AsyncElasticsearch, name: str) -> None:
    template = templates.good_template(
        index=name, shards=1, replicas=0, total_fields_limit=2000, keyword_max_chars=10922
    )
    await indexing.ensure_index(client, name=name, template=template)


async def count(client: elasticsearch.AsyncElasticsearch, index: str) -> int:
    await client.indices.refresh(index=index)
    return int((await client.count(index=index))["count"])


async def run_in_flight(
    items: Sequence[Any], handle: Callable[[Any], Awaitable[Any]], *, in_flight: int
) -> None:
    """Handle every item with at most ``in_flight`` handlers at once, as the consumer does."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await handle(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(in_flight)))


def sink_batcher(
    client: elasticsearch.AsyncElasticsearch, *, concurrent_requests: int = 2
) -> batching.Batcher:
    """The batcher with the sink's default settings (two bulk requests under way)."""
    writer = indexing.BulkWriter(client, metrics=SinkMetrics.create())
    return batching.Batcher(
        writer,
        max_documents=CHUNK_DOCUMENTS,
        flush_after_seconds=0.5,
        max_concurrent_requests=concurrent_requests,
    )


async def index_with_sink(
    client: elasticsearch.AsyncElasticsearch,
    docs: list[documents.Document],
    *,
    in_flight: int,
    concurrent_requests: int,
) -> None:
    batcher = sink_batcher(client, concurrent_requests=concurrent_requests)

    async def handle(document: documents.Document) -> None:
        if await batcher.index(document) is not None:
            raise RuntimeError(f"document {document.id} was rejected")

    await run_in_flight(docs, handle, in_flight=in_flight)
    await batcher.close()


async def index_with_async_bulk(
    client: elasticsearch.AsyncElasticsearch, docs: list[documents.Document]
) -> None:
    actions = ({"_index": d.index, "_id": d.id, "_source": d.source} for d in docs)
    indexed, errors = await helpers.async_bulk(
        client, actions, chunk_size=CHUNK_DOCUMENTS, max_retries=0, raise_on_error=True
    )
    assert indexed == len(docs), errors


async def index_from_tsv(
    client: elasticsearch.AsyncElasticsearch, lines: list[bytes], *, index: str, in_flight: int
) -> None:
    batcher = sink_batcher(client)
    handler = handling.MessageHandler(
        kind="good",
        index=index,
        batcher=batcher,
        failures=_NoFailures(),
        metrics=SinkMetrics.create(),
    )

    async def handle(line: bytes) -> None:
        await handler.handle(line, topic="EnrichedEvents")

    await run_in_flight(lines, handle, in_flight=in_flight)
    await batcher.close()


class _NoFailures:
    async def publish(self, topic: str, messages: Sequence[bytes]) -> None:
        raise RuntimeError(f"unexpected failure published to {topic}")

    async def is_healthy(self) -> bool:
        return True


async def one_run(
    name: str,
    *,
    client: elasticsearch.AsyncElasticsearch,
    lines: list[bytes],
    index: str,
    in_flight: int,
) -> float:
    """Seconds taken by ``name`` to index ``lines`` (prepared first, outside the timing)."""
    docs = [documents.from_enriched(line, index=index) for line in lines]
    started = time.perf_counter()
    if name in ("sink", "sink_one_request"):
        requests = 2 if name == "sink" else 1
        await index_with_sink(client, docs, in_flight=in_flight, concurrent_requests=requests)
    elif name == "async_bulk":
        await index_with_async_bulk(client, docs)
    else:
        await index_from_tsv(client, lines, index=index, in_flight=in_flight)
    return time.perf_counter() - started


async def benchmark(
    url: str, *, count_documents: int, rounds: int, in_flight: int
) -> dict[str, Any]:
    client = elasticsearch.AsyncElasticsearch(url, request_timeout=120)
    lines = enriched_lines(count_documents)
    names = ("sink", "async_bulk", "sink_one_request", "sink_from_tsv")
    results: dict[str, list[float]] = {name: [] for name in names}
    try:
        for round_number in range(rounds + 1):  # round 0 warms the node up and is not counted
            for name in names[:: 1 if round_number % 2 else -1]:
                index = f"bench-{name.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
                await fresh_index(client, index)
                seconds = await one_run(
                    name, client=client, lines=lines, index=index, in_flight=in_flight
                )
                assert await count(client, index) == count_documents, name
                await client.indices.delete(index=index)
                if round_number:
                    results[name].append(count_documents / seconds)
    finally:
        await client.close()
    medians = {name: statistics.median(values) for name, values in results.items()}
    return {
        "documents": count_documents,
        "rounds": rounds,
        "in_flight": in_flight,
        "chunk_documents": CHUNK_DOCUMENTS,
        "documents_per_second": {name: round(value) for name, value in medians.items()},
        "all_rounds": {name: [round(v) for v in values] for name, values in results.items()},
        "ratio_sink_to_async_bulk": round(medians["sink"] / medians["async_bulk"], 3),
        # Each round runs every variant back to back: the median of the per-round ratios is
        # the figure least moved by load that drifts during the run.
        "median_round_ratio_sink_to_async_bulk": round(
            statistics.median(
                s / b for s, b in zip(results["sink"], results["async_bulk"], strict=True)
            ),
            3,
        ),
        "ratio_sink_one_request_to_async_bulk": round(
            medians["sink_one_request"] / medians["async_bulk"], 3
        ),
        "ratio_sink_from_tsv_to_async_bulk": round(
            medians["sink_from_tsv"] / medians["async_bulk"], 3
        ),
    }


@contextlib.contextmanager
def private_elasticsearch() -> Iterator[str]:
    from tests.components import layout
    from tests.components.es_server import ElasticsearchServer

    server = ElasticsearchServer(layout.current())
    try:
        server.start()
        yield server.url
    finally:
        server.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elasticsearch-url", help="use this node instead of a private one")
    parser.add_argument("--documents", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=1000)
    args = parser.parse_args()
    options = {
        "count_documents": args.documents,
        "rounds": args.rounds,
        "in_flight": args.in_flight,
    }
    if args.elasticsearch_url:
        result = asyncio.run(benchmark(args.elasticsearch_url, **options))
    else:
        with private_elasticsearch() as url:
            result = asyncio.run(benchmark(url, **options))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
