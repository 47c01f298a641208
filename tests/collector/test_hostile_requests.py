"""Requests real clients send by accident: long request lines, bytes that are not UTF-8."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from snowplow_pipeline import collector, payloads, topics


@pytest.fixture
async def running() -> AsyncIterator[tuple[int, topics.MemoryTopics, list[bytes]]]:
    memory = topics.MemoryTopics()
    received: list[bytes] = []

    async def keep(message: bytes) -> None:
        received.append(message)

    consumer = asyncio.create_task(memory.consume(topics.RAW_EVENTS, "test", keep))
    settings = collector.CollectorSettings(port=0)
    runner: web.AppRunner = await collector.start(
        settings=settings, app=collector.build_app(settings=settings, publisher=memory)
    )
    yield runner.addresses[0][1], memory, received
    await runner.cleanup()
    consumer.cancel()


async def test_get_with_a_15_kb_query_string_is_collected(running) -> None:
    port, memory, received = running

    url = f"http://127.0.0.1:{port}/i?e=pv&cx={'a' * 15_000}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        status = response.status
    await memory.wait_idle()

    assert status == 200
    assert len(payloads.deserialize(received[0]).querystring or "") > 15_000


async def test_header_bytes_that_are_not_utf8_are_kept_replaced_not_a_500(running) -> None:
    port, memory, received = running
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    writer.write(
        b"GET /i?e=pv HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Mo\xe9zilla\r\n"
        b"Connection: close\r\n\r\n"
    )
    status_line = await reader.readline()
    writer.close()
    await memory.wait_idle()

    assert status_line.startswith(b"HTTP/1.1 200")
    payload = payloads.deserialize(received[0])
    assert payload.user_agent == "Mo\ufffdzilla"
    assert "User-Agent: Mo\ufffdzilla" in payload.headers


async def metrics_text(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        return await response.text()


async def test_client_gone_before_its_content_length_is_a_400_not_a_500(running) -> None:
    port, memory, received = running
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)

    writer.write(
        b"POST /com.snowplowanalytics.snowplow/tp2 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{}"
    )
    await writer.drain()
    writer.close()

    counted = 'collector_requests_total{method="POST",route="/com.snowplowanalytics.snowplow/tp2"'
    text = ""
    for _ in range(50):  # the server learns of the closed connection a moment later
        text = await metrics_text(port)
        if counted in text:
            break
        await asyncio.sleep(0.05)
    assert f'{counted},status="400"}} 1.0' in text
    assert 'status="500"' not in text
    await memory.wait_idle()
    assert received == []
