"""NsqPublisher against a real nsqd: binary round trips, limits, splitting, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from snowplow_pipeline import nsq, topics
from tests.components.nsq_server import NsqdServer
from tests.nsq.conftest import FAST, consuming, eventually, topic_depth

pytestmark = pytest.mark.nsq


@pytest.fixture
async def publisher(nsqd: NsqdServer) -> AsyncIterator[nsq.NsqPublisher]:
    async with nsq.NsqPublisher(http_address=nsqd.http_address) as publisher:
        yield publisher


async def test_binary_messages_with_newlines_arrive_unchanged(
    nsqd: NsqdServer, publisher: nsq.NsqPublisher, topic: str
) -> None:
    sent = [b"line one\nline two\n", b"\x00\xff\r\n\x00binary", b"\n", b"x" * 100_000]
    received: list[bytes] = []

    async def handle(message: bytes) -> None:
        received.append(message)

    consumer = nsq.NsqConsumer(nsqd_tcp_addresses=[nsqd.tcp_address], options=FAST)
    async with consuming(consumer, topic, "round-trip", handle):
        await publisher.publish(topic, sent)
        await eventually(lambda: len(received) >= len(sent), what="all messages")

    assert sorted(received) == sorted(sent)


async def test_message_over_the_limit_is_refused_and_nothing_is_published(
    nsqd: NsqdServer, topic: str
) -> None:
    async with nsq.NsqPublisher(
        http_address=nsqd.http_address, max_message_bytes=1000, max_body_bytes=5000
    ) as publisher:
        with pytest.raises(nsq.MessageTooLargeError) as caught:
            await publisher.publish(topic, [b"fine", b"y" * 1001])

    assert str(caught.value) == "messages[1] is 1001 bytes, the NSQ message limit is 1000 bytes"
    assert topic_depth(nsqd.http_url, topic) == 0


async def test_default_limit_is_nsqds_one_mebibyte(publisher: nsq.NsqPublisher, topic: str) -> None:
    await publisher.publish(topic, [b"z" * 1_048_576])

    with pytest.raises(nsq.MessageTooLargeError, match="the NSQ message limit is 1048576 bytes"):
        await publisher.publish(topic, [b"z" * 1_048_577])


async def test_one_call_over_the_body_limit_is_split_into_several_requests(
    nsqd: NsqdServer, topic: str
) -> None:
    messages = [f"message {i:04d}\n".encode() * 50 for i in range(200)]  # 700 bytes each

    async with nsq.NsqPublisher(
        http_address=nsqd.http_address, max_message_bytes=1000, max_body_bytes=10_000
    ) as publisher:
        await publisher.publish(topic, messages)

    assert topic_depth(nsqd.http_url, topic) == 200


async def test_a_body_over_nsqds_own_limit_is_a_rejection_not_a_retry(
    nsqd: NsqdServer, topic: str
) -> None:
    # This publisher believes nsqd takes 6 MiB bodies; nsqd's default is 5 MiB.
    async with nsq.NsqPublisher(
        http_address=nsqd.http_address, max_body_bytes=6 * 1024 * 1024
    ) as publisher:
        with pytest.raises(nsq.MessageRejectedError, match="answered 413"):
            await publisher.publish(topic, [b"w" * 1_000_000] * 6)


async def test_invalid_topic_name_is_a_rejection(publisher: nsq.NsqPublisher) -> None:
    with pytest.raises(nsq.MessageRejectedError, match=r"answered 400 .*INVALID_TOPIC"):
        await publisher.publish("no spaces allowed", [b"m"])


async def test_publishing_to_a_stopped_nsqd_raises_publish_error(
    fresh_nsqd: NsqdServer, topic: str
) -> None:
    async with nsq.NsqPublisher(http_address=fresh_nsqd.http_address) as publisher:
        assert await publisher.is_healthy() is True
        await asyncio.to_thread(fresh_nsqd.stop)

        with pytest.raises(topics.PublishError, match="did not accept 1 messages") as caught:
            await publisher.publish(topic, [b"m"])

        assert not isinstance(caught.value, nsq.MessageRejectedError)
        assert await publisher.is_healthy() is False
        await asyncio.to_thread(fresh_nsqd.start)
        assert await publisher.is_healthy() is True
        await publisher.publish(topic, [b"m"])
    assert topic_depth(fresh_nsqd.http_url, topic) == 1


async def test_health_check_gives_up_quickly_on_a_silent_server(topic: str) -> None:
    # A listening socket that never answers, as a hung nsqd would.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with (
        server,
        nsq.NsqPublisher(
            http_address=f"127.0.0.1:{port}", timeout_seconds=0.5, ping_timeout_seconds=0.3
        ) as publisher,
    ):
        loop = asyncio.get_running_loop()
        started = loop.time()

        assert await publisher.is_healthy() is False
        assert loop.time() - started < 2
        with pytest.raises(topics.PublishError, match="TimeoutError"):
            await publisher.publish(topic, [b"m"])


async def test_concurrent_calls_share_requests_and_each_returns_once_accepted(
    nsqd: NsqdServer, publisher: nsq.NsqPublisher, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[int] = []
    post_mpub = publisher._post_mpub

    async def counting(topic: str, body: bytes, *, count: int) -> None:
        requests.append(count)
        await post_mpub(topic, body, count=count)

    monkeypatch.setattr(publisher, "_post_mpub", counting)

    await asyncio.gather(*(publisher.publish(topic, [f"m{i}".encode()]) for i in range(200)))

    assert sum(requests) == 200
    assert len(requests) < 20
    assert topic_depth(nsqd.http_url, topic) == 200


async def test_every_call_in_a_refused_request_fails(nsqd: NsqdServer, topic: str) -> None:
    async with nsq.NsqPublisher(http_address=nsqd.http_address) as publisher:
        await publisher.publish(topic, [b"before"])
        nsqd.stop()
        try:
            results = await asyncio.gather(
                *(publisher.publish(topic, [b"during"]) for _ in range(20)),
                return_exceptions=True,
            )
        finally:
            nsqd.start()

    assert all(isinstance(result, topics.PublishError) for result in results)
    assert topic_depth(nsqd.http_url, topic) == 1
