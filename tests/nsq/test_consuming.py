"""NsqConsumer against a real nsqd: concurrency, FIN/REQ, backoff, TOUCH, shutdown, faults."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import AsyncIterator

import pytest

from snowplow_pipeline import nsq
from tests.components.nsq_server import NsqdServer
from tests.nsq.conftest import FAST, channel_stats, consuming, eventually

pytestmark = pytest.mark.nsq


@pytest.fixture
async def publisher(nsqd: NsqdServer) -> AsyncIterator[nsq.NsqPublisher]:
    async with nsq.NsqPublisher(http_address=nsqd.http_address) as publisher:
        yield publisher


@pytest.fixture
def consumer(nsqd: NsqdServer) -> nsq.NsqConsumer:
    return nsq.NsqConsumer(nsqd_tcp_addresses=[nsqd.tcp_address], options=FAST)


class Recorder:
    """A handler that counts deliveries and how many of them ran at once."""

    def __init__(self, *, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.deliveries: collections.Counter[bytes] = collections.Counter()
        self.running = 0
        self.most_running = 0

    async def __call__(self, message: bytes) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.seconds)
            self.deliveries[message] += 1
        finally:
            self.running -= 1


async def test_hundred_messages_are_each_handled_once_with_at_most_ten_at_a_time(
    nsqd: NsqdServer, publisher: nsq.NsqPublisher, consumer: nsq.NsqConsumer, topic: str
) -> None:
    messages = [f"event {i}".encode() for i in range(100)]
    handler = Recorder(seconds=0.05)

    async with consuming(consumer, topic, "exactly-once", handler, max_in_flight=10):
        await publisher.publish(topic, messages)
        await eventually(lambda: sum(handler.deliveries.values()) >= 100, what="100 deliveries")
        await eventually(
            lambda: channel_stats(nsqd.http_url, topic, "exactly-once")["in_flight_count"] == 0,
            what="every FIN acknowledged",
        )

    assert handler.deliveries == collections.Counter(messages)
    assert handler.most_running == 10
    stats = channel_stats(nsqd.http_url, topic, "exactly-once")
    assert (stats["message_count"], stats["requeue_count"], stats["timeout_count"]) == (100, 0, 0)
    assert stats["depth"] == 0


async def test_a_message_whose_handler_raised_comes_back(
    nsqd: NsqdServer, publisher: nsq.NsqPublisher, consumer: nsq.NsqConsumer, topic: str
) -> None:
    attempts: list[bytes] = []

    async def fail_first_time(message: bytes) -> None:
        attempts.append(message)
        if len(attempts) == 1:
            raise RuntimeError("Elasticsearch is down")

    async with consuming(consumer, topic, "retry", fail_first_time):
        await publisher.publish(topic, [b"only message"])
        await eventually(lambda: len(attempts) >= 2, what="the redelivery")
        await eventually(
            lambda: channel_stats(nsqd.http_url, topic, "retry")["in_flight_count"] == 0,
            what="the FIN",
        )

    assert attempts == [b"only message", b"only message"]
    assert channel_stats(nsqd.http_url, topic, "retry")["requeue_count"] == 1


async def test_failing_handlers_pause_consumption_until_they_succeed_again(
    publisher: nsq.NsqPublisher, consumer: nsq.NsqConsumer, topic: str
) -> None:
    failures = 0
    handled: set[bytes] = set()
    is_down = True

    async def handle(message: bytes) -> None:
        nonlocal failures
        if is_down:
            failures += 1
            raise ConnectionError("Elasticsearch is down")
        handled.add(message)

    messages = [f"event {i}".encode() for i in range(50)]
    async with consuming(consumer, topic, "backoff", handle, max_in_flight=5):
        await publisher.publish(topic, messages)
        await eventually(lambda: failures >= 5, what="the first failures")
        # A window of 1.5 s: without backoff, requeues 0.1 s apart would fail hundreds of times.
        await asyncio.sleep(1.5)
        failures_while_down = failures
        is_down = False
        await eventually(lambda: len(handled) == 50, what="all messages once the sink is back")

    assert 5 <= failures_while_down <= 5 + 10


async def test_a_handler_longer_than_the_message_timeout_keeps_its_message(
    nsqd: NsqdServer, publisher: nsq.NsqPublisher, topic: str
) -> None:
    # nsqd redelivers after msg_timeout (1 s here) unless the consumer sends TOUCH. It scans a
    # new channel for timeouts only after its queue-scan refresh (5 s), hence the long handler.
    consumer = nsq.NsqConsumer(
        nsqd_tcp_addresses=[nsqd.tcp_address],
        options=dataclasses.replace(FAST, msg_timeout_seconds=1.0),
    )
    handler = Recorder(seconds=7.0)

    async with consuming(consumer, topic, "touch", handler):
        await publisher.publish(topic, [b"slow"])
        await eventually(lambda: handler.deliveries[b"slow"] >= 1, what="the slow handler")

    assert handler.deliveries == {b"slow": 1}
    stats = channel_stats(nsqd.http_url, topic, "touch")
    assert (stats["timeout_count"], stats["requeue_count"], stats["in_flight_count"]) == (0, 0, 0)


async def test_stop_lets_handlers_in_flight_finish_and_acknowledges_them(
    nsqd: NsqdServer, publisher: nsq.NsqPublisher, consumer: nsq.NsqConsumer, topic: str
) -> None:
    handler = Recorder(seconds=1.0)
    await publisher.publish(topic, [f"event {i}".encode() for i in range(5)])
    task = asyncio.create_task(consumer.consume(topic, "drain", handler, max_in_flight=5))
    await eventually(lambda: handler.running == 5, what="five handlers running")

    consumer.stop()
    await asyncio.wait_for(task, timeout=10)

    assert sum(handler.deliveries.values()) == 5
    stats = channel_stats(nsqd.http_url, topic, "drain")
    assert (stats["in_flight_count"], stats["depth"], stats["requeue_count"]) == (0, 0, 0)
    # nsqd notices the closed connection on its own time.
    await eventually(
        lambda: channel_stats(nsqd.http_url, topic, "drain")["client_count"] == 0,
        what="nsqd to drop the client",
    )


async def test_consumer_reconnects_after_nsqd_restarts_and_nothing_is_lost(
    fresh_nsqd: NsqdServer, topic: str
) -> None:
    handler = Recorder(seconds=0.01)
    consumer = nsq.NsqConsumer(nsqd_tcp_addresses=[fresh_nsqd.tcp_address], options=FAST)
    before = [f"before {i}".encode() for i in range(50)]
    after = [f"after {i}".encode() for i in range(50)]

    async with nsq.NsqPublisher(http_address=fresh_nsqd.http_address) as publisher:
        await publisher.publish(topic, before)
        async with consuming(consumer, topic, "restart", handler, max_in_flight=5):
            await eventually(lambda: len(handler.deliveries) >= 10, what="some deliveries")
            await asyncio.to_thread(fresh_nsqd.stop)
            await eventually(lambda: not consumer.is_connected(), what="the lost connection")
            with pytest.raises(nsq.topics.PublishError):
                await publisher.publish(topic, after)
            assert await publisher.is_healthy() is False

            await asyncio.to_thread(fresh_nsqd.start)
            await publisher.publish(topic, after)
            await eventually(consumer.is_connected, what="the reconnection")
            await eventually(
                lambda: set(handler.deliveries) == {*before, *after},
                timeout_seconds=30,
                what="every message before and after the restart",
            )


async def test_consumer_finds_nsqd_through_nsqlookupd(
    lookupd_cluster: tuple[str, str, str], topic: str
) -> None:
    lookupd_http, nsqd_http, _ = lookupd_cluster
    handler = Recorder()
    consumer = nsq.NsqConsumer(lookupd_http_addresses=[lookupd_http], options=FAST)

    async with (
        nsq.NsqPublisher(http_address=nsqd_http) as publisher,
        consuming(consumer, topic, "lookup", handler),
    ):
        await publisher.publish(topic, [b"found"])
        await eventually(lambda: handler.deliveries[b"found"] == 1, what="the message")
        assert consumer.is_connected() is True

    assert handler.deliveries == {b"found": 1}
