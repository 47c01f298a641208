"""Fixtures for the collector tests: an in-memory sink that records what was published, and
clients talking to collector apps on 127.0.0.1 through aiohttp's test server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from snowplow_pipeline import badrows, payloads, topics
from snowplow_pipeline.collector import CollectorSettings, build_app

SETTLE_TIMEOUT_SECONDS = 5.0


@dataclasses.dataclass
class Sink:
    """``MemoryTopics`` with a test channel on each collector topic, recording every message."""

    topics: topics.MemoryTopics
    raw: list[bytes]
    bad: list[bytes]

    async def settle(self) -> None:
        """Wait (with a deadline) until every published message has been recorded."""
        await asyncio.wait_for(self.topics.wait_idle(), timeout=SETTLE_TIMEOUT_SECONDS)

    async def payloads(self) -> list[payloads.CollectorPayload]:
        await self.settle()
        return [payloads.deserialize(message) for message in self.raw]

    async def bad_rows(self) -> list[dict[str, Any]]:
        await self.settle()
        return [badrows.parse(message) for message in self.bad]


class RefusingPublisher:
    """Failure injection: a transport that refuses ``refused_topics`` (all by default)."""

    def __init__(self, refused_topics: Sequence[str] | None = None) -> None:
        self.refused_topics = refused_topics
        self.accepted: list[tuple[str, list[bytes]]] = []

    async def publish(self, topic: str, messages: Sequence[bytes]) -> None:
        if self.refused_topics is None or topic in self.refused_topics:
            raise topics.PublishError(f"nsqd refused the messages for {topic}")
        self.accepted.append((topic, list(messages)))

    async def is_healthy(self) -> bool:
        return False


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    memory = topics.MemoryTopics()
    recorded = Sink(topics=memory, raw=[], bad=[])
    tasks = [
        asyncio.create_task(memory.consume(topic, "test", _recorder(messages)))
        for topic, messages in (
            (topics.RAW_EVENTS, recorded.raw),
            (topics.BAD_RAW_EVENTS, recorded.bad),
        )
    ]
    await asyncio.sleep(0)  # let both consumers open their channel before anything is published
    yield recorded
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(sink: Sink) -> AsyncIterator[MakeClient]:
    """Build a collector app from settings fields (or a ready app) and a client for it."""
    clients: list[TestClient] = []

    async def make(
        *,
        publisher: topics.Publisher | None = None,
        app: web.Application | None = None,
        extra_routes: Sequence[web.RouteDef] = (),
        **settings_fields: Any,
    ) -> TestClient:
        if app is None:
            app = build_app(
                settings=CollectorSettings(**settings_fields),
                publisher=publisher or sink.topics,
                extra_routes=extra_routes,
            )
        client = TestClient(TestServer(app, host="127.0.0.1"), cookie_jar=DummyCookieJar())
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient:
    """A client for a collector with default settings."""
    return await make_client()


def _recorder(messages: list[bytes]) -> Callable[[bytes], Awaitable[None]]:
    async def record(message: bytes) -> None:
        messages.append(message)

    return record
