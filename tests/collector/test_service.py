"""Running the collector: it listens on the configured address and drains on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Sequence

import aiohttp
import pytest

from snowplow_pipeline import topics
from snowplow_pipeline.collector import CollectorSettings, build_app, serve, start

DEADLINE_SECONDS = 5.0


class GatedPublisher:
    """Holds every publish until ``gate`` is set, so a request can be caught in flight."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.published: list[bytes] = []

    async def publish(self, topic: str, messages: Sequence[bytes]) -> None:
        self.entered.set()
        await self.gate.wait()
        self.published.extend(messages)

    async def is_healthy(self) -> bool:
        return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_until_healthy(url: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    async with aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer 200 within {DEADLINE_SECONDS} s")
            await asyncio.sleep(0.05)


async def test_request_in_flight_at_shutdown_is_finished_and_answered() -> None:
    publisher = GatedPublisher()
    settings = CollectorSettings(port=0, shutdown_timeout_seconds=DEADLINE_SECONDS)
    runner = await start(settings=settings, app=build_app(settings=settings, publisher=publisher))
    host, port = runner.addresses[0][:2]

    async with aiohttp.ClientSession() as session:
        request = asyncio.create_task(session.get(f"http://{host}:{port}/i?e=pv"))
        await asyncio.wait_for(publisher.entered.wait(), timeout=DEADLINE_SECONDS)
        shutdown = asyncio.create_task(runner.cleanup())
        await asyncio.sleep(0.1)
        publisher.gate.set()
        response = await asyncio.wait_for(request, timeout=DEADLINE_SECONDS)
        await asyncio.wait_for(shutdown, timeout=DEADLINE_SECONDS)

    assert host == "127.0.0.1"
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/gif"
    assert len(publisher.published) == 1


async def test_serve_answers_until_cancelled_then_stops_listening() -> None:
    port = free_port()
    settings = CollectorSettings(port=port)
    task = asyncio.create_task(serve(settings, topics.MemoryTopics()))
    await wait_until_healthy(f"http://127.0.0.1:{port}/health")

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
