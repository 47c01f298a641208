"""``snowplow-mini collector`` as a real process publishing to a real nsqd."""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from snowplow_pipeline import nsq, payloads, topics
from tests.components.nsq_server import NsqdServer
from tests.components.processes import ManagedProcess, free_port, wait_until
from tests.nsq.conftest import FAST, consuming, eventually

pytestmark = pytest.mark.nsq

SNOWPLOW_MINI = Path(sys.executable).with_name("snowplow-mini")


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def collector_url(fresh_nsqd: NsqdServer, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = ManagedProcess(
        "collector",
        [str(SNOWPLOW_MINI), "--log-format", "json", "collector", "--port", str(port)],
        log_path=tmp_path / "collector.log",
        env={**os.environ, "SNOWPLOW_COLLECTOR_NSQ__NSQD_HTTP_ADDRESS": fresh_nsqd.http_address},
    )
    url = f"http://127.0.0.1:{port}"
    process.start()
    try:
        wait_until(
            lambda: status_of(f"{url}/health") == 200,
            timeout_seconds=30,
            what="collector /health",
            process=process,
        )
        yield url
    finally:
        process.stop()


async def test_collector_publishes_each_request_as_a_collector_payload_on_raw_events(
    fresh_nsqd: NsqdServer, collector_url: str
) -> None:
    received: list[bytes] = []

    async def keep(message: bytes) -> None:
        received.append(message)

    status = await asyncio.to_thread(status_of, f"{collector_url}/i?e=pv&eid=abc&aid=shop")

    consumer = nsq.NsqConsumer(nsqd_tcp_addresses=[fresh_nsqd.tcp_address], options=FAST)
    async with consuming(consumer, topics.RAW_EVENTS, "test", keep):
        await eventually(lambda: len(received) == 1, what="the collector payload")
    assert status == 200
    payload = payloads.deserialize(received[0])
    assert (payload.path, payload.querystring) == ("/i", "e=pv&eid=abc&aid=shop")


async def test_collector_is_unready_and_answers_503_while_nsqd_is_down(
    fresh_nsqd: NsqdServer, collector_url: str
) -> None:
    assert await asyncio.to_thread(status_of, f"{collector_url}/sink-health") == 200
    await asyncio.to_thread(fresh_nsqd.stop)

    readiness = await asyncio.to_thread(status_of, f"{collector_url}/sink-health")
    tracking = await asyncio.to_thread(status_of, f"{collector_url}/i?e=pv")

    assert (readiness, tracking) == (503, 503)
    await asyncio.to_thread(fresh_nsqd.start)
    assert await asyncio.to_thread(status_of, f"{collector_url}/i?e=pv") == 200
