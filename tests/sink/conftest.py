"""Fixtures for the sink tests: a sink service on in-memory topics against the real
Elasticsearch, a client to look at what it indexed, and polling with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import elasticsearch
import pytest

from snowplow_pipeline import badrows, topics
from snowplow_pipeline.sink import handling, service
from snowplow_pipeline.sink.metrics import SinkMetrics
from snowplow_pipeline.sink.settings import SinkSettings
from tests.components.es_server import ElasticsearchServer

POLL_SECONDS = 30.0
T = TypeVar("T")


async def eventually(
    fetch: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    what: str,
    timeout_seconds: float = POLL_SECONDS,
) -> T:
    """Poll ``fetch`` until ``accept`` holds for its result; fail at the deadline."""
    deadline = time.monotonic() + timeout_seconds
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(elasticsearch.TransportError, elasticsearch.ApiError):
            last = await fetch()
            if accept(last):
                return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_seconds:.0f} s waiting for {what}; last {last}")


def unique_index(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class RecordingPublisher:
    """The failure topic: records what was published to it."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, messages: Sequence[bytes]) -> None:
        self.published.extend((topic, message) for message in messages)

    async def is_healthy(self) -> bool:
        return True

    def bad_rows(self) -> list[dict[str, Any]]:
        return [badrows.parse(message) for _, message in self.published]


@dataclasses.dataclass
class RunningSink:
    settings: SinkSettings
    topics: topics.MemoryTopics
    failures: RecordingPublisher
    client: elasticsearch.AsyncElasticsearch
    metrics: SinkMetrics = dataclasses.field(default_factory=SinkMetrics.create)

    def messages(self, topic: str, outcome: str) -> float | None:
        labels = {"topic": topic, "outcome": outcome}
        return self.metrics.registry.get_sample_value("sink_messages_total", labels)

    @property
    def index(self) -> str:
        return self.settings.index_name

    async def publish(self, topic: str, messages: Sequence[bytes]) -> None:
        await self.topics.publish(topic, messages)

    async def settle(self) -> None:
        """Wait until every published message was handled, then make it searchable."""
        await asyncio.wait_for(self.topics.wait_idle(), timeout=POLL_SECONDS)
        await self.client.indices.refresh(index=self.index)

    async def sources(self) -> list[dict[str, Any]]:
        await self.settle()
        answer = await self.client.search(index=self.index, size=1000)
        return [hit["_source"] for hit in answer["hits"]["hits"]]

    async def count(self, **query: Any) -> int:
        answer = await self.client.count(index=self.index, **query)
        return int(answer["count"])


@pytest.fixture
async def es_client(elasticsearch: ElasticsearchServer) -> AsyncIterator[Any]:
    client = elasticsearch_client(elasticsearch.url)
    try:
        yield client
    finally:
        await client.close()


def elasticsearch_client(url: str) -> elasticsearch.AsyncElasticsearch:
    return elasticsearch.AsyncElasticsearch(url, request_timeout=30)


def sink_settings(kind: str, *, es_url: str, **overrides: Any) -> SinkSettings:
    values: dict[str, Any] = {
        "kind": kind,
        "port": 0,
        "elasticsearch": {"urls": [es_url]},
        "index": {"name": unique_index(kind), **overrides.pop("index", {})},
        "batch": {"flush_after_seconds": 0.02, **overrides.pop("batch", {})},
        "nsq": {"nsqd_tcp_addresses": ["127.0.0.1:4150"]},
        **overrides,
    }
    return SinkSettings(**values)


@pytest.fixture
async def run_sink(
    elasticsearch: ElasticsearchServer, es_client: elasticsearch.AsyncElasticsearch
) -> AsyncIterator[Callable[..., Awaitable[RunningSink]]]:
    """Start a sink service of a kind on in-memory topics; it is stopped after the test."""
    tasks: list[asyncio.Task[None]] = []

    async def start(kind: str, **overrides: Any) -> RunningSink:
        settings = sink_settings(kind, es_url=elasticsearch.url, **overrides)
        memory = topics.MemoryTopics(retry_delay_seconds=0.2)
        sink = RunningSink(settings, memory, RecordingPublisher(), es_client)
        subscribed: set[str] = set()

        async def consume(topic: str, channel: str, handler: topics.Handler) -> None:
            # MemoryTopics subscribes in the first step of consume, in the same step as this.
            subscribed.add(topic)
            await memory.consume(topic, channel, handler)

        task = asyncio.create_task(
            service.run(settings, consume=consume, failures=sink.failures, metrics=sink.metrics)
        )
        tasks.append(task)
        expected = set(handling.TOPICS[settings.kind])

        async def subscriptions() -> set[str]:
            assert not task.done(), task
            return subscribed

        await eventually(subscriptions, expected.issubset, what=f"the {kind} sink to consume")
        return sink

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
