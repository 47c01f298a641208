"""The sink service's own HTTP endpoints: health follows start-up and the transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from snowplow_pipeline import topics
from snowplow_pipeline.sink import service
from tests.components.processes import free_port
from tests.sink.conftest import RecordingPublisher, eventually, sink_settings


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get_health(http: aiohttp.ClientSession, port: int) -> tuple[int, Any]:
    """Status and body of ``/health``; status 0 while nothing listens yet."""
    try:
        async with http.get(f"http://127.0.0.1:{port}/health") as response:
            return response.status, await response.json()
    except aiohttp.ClientConnectionError:
        return 0, None


async def test_health_is_503_while_elasticsearch_cannot_be_reached_for_index_setup(
    http: aiohttp.ClientSession,
) -> None:
    port = free_port()
    unreachable = f"http://127.0.0.1:{free_port()}"
    settings = sink_settings("good", es_url=unreachable, port=port)
    memory = topics.MemoryTopics()
    task = asyncio.create_task(
        service.run(settings, consume=memory.consume, failures=RecordingPublisher())
    )

    try:
        status, body = await eventually(
            lambda: get_health(http, port), lambda a: a[0] != 0, what="/health to answer"
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert (status, body) == (503, {"status": "setting up the index", "kind": "good"})


@pytest.mark.elasticsearch
async def test_health_is_200_once_the_index_is_set_up_and_503_when_the_transport_is_down(
    http: aiohttp.ClientSession, elasticsearch: Any
) -> None:
    port = free_port()
    settings = sink_settings("bad", es_url=elasticsearch.url, port=port)
    memory = topics.MemoryTopics()
    connected = [True]
    task = asyncio.create_task(
        service.run(
            settings,
            consume=memory.consume,
            failures=RecordingPublisher(),
            is_connected=lambda: connected[0],
        )
    )

    try:
        ready = await eventually(
            lambda: get_health(http, port), lambda a: a[0] == 200, what="/health to be 200"
        )
        connected[0] = False
        disconnected = await get_health(http, port)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert ready == (200, {"status": "ok", "kind": "bad"})
    assert disconnected == (503, {"status": "not connected to the transport", "kind": "bad"})
