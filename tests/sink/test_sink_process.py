"""The ``snowplow-mini sink`` process on a real nsqd and a real Elasticsearch, under faults.

Each test runs the sink as a separate process (so it can be killed) on its own channel and
index, publishes enriched events to nsqd, and checks the index holds every event once.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import elasticsearch
import pytest

from snowplow_pipeline import nsq, topics
from tests.components.es_server import ElasticsearchServer
from tests.components.nsq_server import NsqdServer
from tests.components.processes import ManagedProcess, free_port, wait_until
from tests.sink import events
from tests.sink.conftest import elasticsearch_client, eventually, unique_index

pytestmark = [pytest.mark.nsq, pytest.mark.elasticsearch]

START_SECONDS = 60.0
INDEXED_SECONDS = 180.0


class SinkProcess:
    """One ``snowplow-mini sink good`` process with a log file; restartable with new env."""

    def __init__(self, *, env: dict[str, str], log_path: pathlib.Path) -> None:
        self.port = int(env["SNOWPLOW_SINK_PORT"])
        code = "from snowplow_pipeline.cli import main; raise SystemExit(main())"
        self.process = ManagedProcess(
            "sink",
            [sys.executable, "-c", code, "--log-format", "json", "sink", "good"],
            log_path=log_path,
            env={**os.environ, **env},
        )

    def start(self) -> None:
        self.process.start()
        wait_until(
            self._is_healthy,
            timeout_seconds=START_SECONDS,
            what=f"the sink's /health on port {self.port}",
            process=self.process,
        )

    def metric(self, name: str) -> float | None:
        """The value of an unlabelled metric on the sink's ``/metrics``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(f"{name} "):
                    return float(line.split()[1])
        return None

    def _is_healthy(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
            return r.status == 200


def channel_stats(nsqd: NsqdServer, topic: str, channel: str) -> dict[str, Any] | None:
    url = f"{nsqd.http_url}/stats?format=json&topic={topic}&channel={channel}"
    with urllib.request.urlopen(url, timeout=5) as response:
        stats = json.loads(response.read())
    for found_topic in stats.get("topics") or []:
        for found_channel in found_topic.get("channels") or []:
            if found_channel["channel_name"] == channel:
                return dict(found_channel)
    return None


@pytest.fixture
def sink_env(
    nsqd: NsqdServer, elasticsearch: ElasticsearchServer
) -> Iterator[Callable[..., dict[str, str]]]:
    channel = f"test-{uuid.uuid4().hex[:8]}"
    index = unique_index("good")

    def build(**extra: str) -> dict[str, str]:
        return {
            "SNOWPLOW_SINK_PORT": str(free_port()),
            "SNOWPLOW_SINK_INDEX__NAME": index,
            "SNOWPLOW_SINK_NSQ__CHANNEL": channel,
            "SNOWPLOW_SINK_NSQ__NSQD_TCP_ADDRESSES": json.dumps([nsqd.tcp_address]),
            "SNOWPLOW_SINK_NSQ__NSQD_HTTP_ADDRESS": nsqd.http_address,
            "SNOWPLOW_SINK_ELASTICSEARCH__URLS": json.dumps([elasticsearch.url]),
            **extra,
        }

    yield build


@pytest.fixture
def start_sink(tmp_path: pathlib.Path) -> Iterator[Callable[[dict[str, str]], SinkProcess]]:
    """Start sink processes; each is stopped after the test, whatever happened."""
    started: list[SinkProcess] = []

    def start(env: dict[str, str]) -> SinkProcess:
        sink = SinkProcess(env=env, log_path=tmp_path / f"sink-{len(started)}.log")
        started.append(sink)
        sink.start()
        return sink

    yield start
    for sink in started:
        sink.process.stop()


def topic_message_count(nsqd: NsqdServer, topic: str) -> int:
    url = f"{nsqd.http_url}/stats?format=json&topic={topic}"
    with urllib.request.urlopen(url, timeout=5) as response:
        stats = json.loads(response.read())
    return sum(found["message_count"] for found in stats.get("topics") or [])


@pytest.fixture
async def publisher(nsqd: NsqdServer) -> AsyncIterator[nsq.NsqPublisher]:
    async with nsq.NsqPublisher(http_address=nsqd.http_address) as publisher:
        yield publisher


@pytest.fixture
async def es_client(elasticsearch: ElasticsearchServer) -> AsyncIterator[Any]:
    client = elasticsearch_client(elasticsearch.url)
    try:
        yield client
    finally:
        await client.close()


async def wait_for_subscription(nsqd: NsqdServer, channel: str) -> None:
    async def stats() -> dict[str, Any] | None:
        return await asyncio.to_thread(channel_stats, nsqd, topics.ENRICHED_EVENTS, channel)

    await eventually(stats, lambda found: found is not None, what=f"channel {channel} on nsqd")


async def indexed_ids(client: elasticsearch.AsyncElasticsearch, index: str) -> list[str]:
    await client.indices.refresh(index=index)
    answer = await client.search(index=index, size=10_000, source=["event_id"])
    return [hit["_id"] for hit in answer["hits"]["hits"]]


async def wait_until_indexed(
    client: elasticsearch.AsyncElasticsearch, index: str, expected: list[str]
) -> list[str]:
    return await eventually(
        lambda: indexed_ids(client, index),
        lambda ids: len(ids) >= len(expected),
        what=f"{len(expected)} events in {index}",
        timeout_seconds=INDEXED_SECONDS,
    )


async def publish_steadily(
    publisher: nsq.NsqPublisher, ids: list[str], *, per_second: float
) -> None:
    """Publish one event per id at a steady rate, retrying while nsqd is busy."""
    started = time.monotonic()
    for number, event_id in enumerate(ids):
        await asyncio.sleep(max(0.0, started + number / per_second - time.monotonic()))
        await publisher.publish(topics.ENRICHED_EVENTS, [events.enriched_line(event_id)])


async def test_every_event_is_indexed_exactly_once_when_elasticsearch_stops_for_30_seconds(
    nsqd: NsqdServer,
    elasticsearch: ElasticsearchServer,
    sink_env: Callable[..., dict[str, str]],
    start_sink: Callable[[dict[str, str]], SinkProcess],
    publisher: nsq.NsqPublisher,
    es_client: elasticsearch.AsyncElasticsearch,
) -> None:
    env = sink_env(SNOWPLOW_SINK_RETRY__GIVE_UP_AFTER_SECONDS="10")
    sink = start_sink(env)
    failures_before = topic_message_count(nsqd, topics.BAD_ELASTICSEARCH_EVENTS)
    await wait_for_subscription(nsqd, env["SNOWPLOW_SINK_NSQ__CHANNEL"])
    index = env["SNOWPLOW_SINK_INDEX__NAME"]
    ids = events.event_ids(1500)

    publishing = asyncio.create_task(publish_steadily(publisher, ids, per_second=30))
    await eventually(
        lambda: indexed_ids(es_client, index), bool, what="the first events to be indexed"
    )
    await asyncio.to_thread(elasticsearch.stop)
    await asyncio.sleep(30)  # the outage itself: Elasticsearch stays down this long
    await asyncio.to_thread(elasticsearch.start)
    await publishing
    found = await wait_until_indexed(es_client, index, ids)

    assert sorted(found) == sorted(ids)
    assert sink.process.is_running(), sink.process.log_tail()
    assert topic_message_count(nsqd, topics.BAD_ELASTICSEARCH_EVENTS) == failures_before


async def test_nothing_is_lost_when_the_sink_is_killed_mid_batch_and_restarted(
    nsqd: NsqdServer,
    sink_env: Callable[..., dict[str, str]],
    start_sink: Callable[[dict[str, str]], SinkProcess],
    publisher: nsq.NsqPublisher,
    es_client: elasticsearch.AsyncElasticsearch,
) -> None:
    # Batches of 100 that otherwise wait 60 s: 250 events leave 50 in the open batch.
    env = sink_env(
        SNOWPLOW_SINK_BATCH__MAX_DOCUMENTS="100",
        SNOWPLOW_SINK_BATCH__FLUSH_AFTER_SECONDS="60",
        SNOWPLOW_SINK_NSQ__MSG_TIMEOUT_SECONDS="5",
    )
    channel, index = env["SNOWPLOW_SINK_NSQ__CHANNEL"], env["SNOWPLOW_SINK_INDEX__NAME"]
    sink = start_sink(env)
    await wait_for_subscription(nsqd, channel)
    ids = events.event_ids(250)

    await publisher.publish(topics.ENRICHED_EVENTS, [events.enriched_line(i) for i in ids])
    await eventually(
        lambda: indexed_ids(es_client, index),
        lambda found: len(found) == 200,
        what="two full batches to be indexed",
    )
    stats = await asyncio.to_thread(channel_stats, nsqd, topics.ENRICHED_EVENTS, channel)
    sink.process.kill()
    start_sink({**env, "SNOWPLOW_SINK_BATCH__FLUSH_AFTER_SECONDS": "0.2"})
    found = await wait_until_indexed(es_client, index, ids)

    assert stats is not None and stats["in_flight_count"] == 50
    assert sorted(found) == sorted(ids)


async def test_sigterm_sends_the_open_batch_before_the_sink_exits(
    nsqd: NsqdServer,
    sink_env: Callable[..., dict[str, str]],
    start_sink: Callable[[dict[str, str]], SinkProcess],
    publisher: nsq.NsqPublisher,
    es_client: elasticsearch.AsyncElasticsearch,
) -> None:
    env = sink_env(SNOWPLOW_SINK_BATCH__FLUSH_AFTER_SECONDS="60")
    channel, index = env["SNOWPLOW_SINK_NSQ__CHANNEL"], env["SNOWPLOW_SINK_INDEX__NAME"]
    sink = start_sink(env)
    await wait_for_subscription(nsqd, channel)
    ids = events.event_ids(30)
    await publisher.publish(topics.ENRICHED_EVENTS, [events.enriched_line(i) for i in ids])
    await eventually(
        lambda: asyncio.to_thread(sink.metric, "sink_documents_waiting"),
        lambda waiting: waiting == 30,
        what="30 events waiting in the open batch",
    )
    started = time.monotonic()

    await asyncio.to_thread(sink.process.stop, timeout_seconds=20)

    assert time.monotonic() - started < 15
    assert sorted(await indexed_ids(es_client, index)) == sorted(ids)
    stats = channel_stats(nsqd, topics.ENRICHED_EVENTS, channel)
    assert stats is not None and (stats["in_flight_count"], stats["depth"]) == (0, 0)
