"""Helpers for the NSQ boundary tests: unique topics, nsqd's own counters, polling, consumers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from snowplow_pipeline import nsq
from tests.components import layout
from tests.components.processes import ManagedProcess, free_port, require_file, wait_until

# Short timings so that failures, pauses and reconnections happen within a test's patience.
FAST = nsq.ConsumerOptions(
    requeue_delay_seconds=0.1,
    max_requeue_delay_seconds=1.0,
    backoff_seconds=0.1,
    max_backoff_seconds=0.5,
    reconnect_seconds=0.1,
    max_reconnect_seconds=0.5,
    heartbeat_seconds=1.0,
    msg_timeout_seconds=2.0,
    lookupd_poll_seconds=0.5,
    drain_timeout_seconds=10.0,
)


@pytest.fixture
def topic() -> str:
    """A topic no other test uses (the session's nsqd keeps topics between tests)."""
    return f"test-{uuid.uuid4().hex[:12]}"


def channel_stats(http_url: str, topic: str, channel: str) -> dict[str, Any]:
    """nsqd's counters for one channel (depth, in_flight_count, requeue_count, ...)."""
    query = f"{http_url}/stats?format=json&topic={topic}&channel={channel}"
    with urllib.request.urlopen(query, timeout=5) as response:
        stats = json.load(response)
    for entry in stats.get("topics") or []:
        if entry["topic_name"] == topic:
            for found in entry["channels"]:
                if found["channel_name"] == channel:
                    return dict(found)
    raise LookupError(f"nsqd has no channel {topic}/{channel}")


def topic_depth(http_url: str, topic: str) -> int:
    with urllib.request.urlopen(f"{http_url}/stats?format=json&topic={topic}", timeout=5) as r:
        stats = json.load(r)
    return sum(t["depth"] for t in stats.get("topics") or [] if t["topic_name"] == topic)


async def eventually(
    check: Callable[[], bool], *, timeout_seconds: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``check`` (exceptions count as "not yet") until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout_seconds
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last_error = exc
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_seconds} s waiting for {what} ({last_error!r})")


@contextlib.asynccontextmanager
async def consuming(
    consumer: nsq.NsqConsumer,
    topic: str,
    channel: str,
    handler: Callable[[bytes], Awaitable[None]],
    *,
    max_in_flight: int = 100,
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``consumer.consume`` in a task; stop it gracefully (and check it ended) on exit."""
    task = asyncio.create_task(
        consumer.consume(topic, channel, handler, max_in_flight=max_in_flight)
    )
    try:
        yield task
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=30)


@pytest.fixture
def lookupd_cluster(
    component_layout: layout.Layout, tmp_path: Path
) -> Iterator[tuple[str, str, str]]:
    """An nsqlookupd and an nsqd registered with it: (lookupd HTTP, nsqd HTTP, nsqd TCP)."""
    ports = {name: free_port() for name in ("lookupd_tcp", "lookupd_http", "tcp", "http")}
    lookupd = ManagedProcess(
        "nsqlookupd",
        [
            str(require_file(component_layout.binary("nsqlookupd"), "nsqlookupd")),
            f"--tcp-address=127.0.0.1:{ports['lookupd_tcp']}",
            f"--http-address=127.0.0.1:{ports['lookupd_http']}",
            "--broadcast-address=127.0.0.1",
        ],
        log_path=tmp_path / "nsqlookupd.log",
    )
    nsqd = ManagedProcess(
        "nsqd (with lookupd)",
        [
            str(require_file(component_layout.binary("nsqd"), "nsqd")),
            f"--tcp-address=127.0.0.1:{ports['tcp']}",
            f"--http-address=127.0.0.1:{ports['http']}",
            "--https-address=",
            "--broadcast-address=127.0.0.1",
            f"--lookupd-tcp-address=127.0.0.1:{ports['lookupd_tcp']}",
            f"--data-path={tmp_path}",
        ],
        log_path=tmp_path / "nsqd.log",
    )
    try:
        for process, port in ((lookupd, ports["lookupd_http"]), (nsqd, ports["http"])):
            process.start()
            wait_until(
                lambda port=port: _answers_ping(port),
                timeout_seconds=30,
                what=f"{process.name} /ping",
                process=process,
            )
        yield (
            f"127.0.0.1:{ports['lookupd_http']}",
            f"127.0.0.1:{ports['http']}",
            f"127.0.0.1:{ports['tcp']}",
        )
    finally:
        nsqd.stop()
        lookupd.stop()


def _answers_ping(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
        return bool(response.status == 200)
