"""Fixtures for the tracker tests: a collector publishing to a private nsqd, and what it wrote.

Every tracker test follows one path: a real tracker sends to the collector, the collector
publishes to nsqd's ``RawEvents``, and the test reads the messages back over nsqd's TCP protocol
and decodes each with ``payloads.deserialize``. nsqd's own counters say when nothing more is
pending, so a test asserts exact counts without waiting for silence.

The collector is the real ``snowplow-mini collector`` process. Trackers that block (the Python
one) run in a thread and the JavaScript ones in a subprocess, so the test's event loop keeps
reading ``RawEvents`` while they send.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import pathlib
import signal
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from snowplow_pipeline import collector, nsq, payloads, topics
from tests.components.nsq_server import NsqdServer
from tests.components.processes import ManagedProcess, free_port, wait_until
from tests.trackers import layout

JS_DIR = pathlib.Path(__file__).with_name("js")
SNOWPLOW_MINI = pathlib.Path(sys.executable).with_name("snowplow-mini")
CHANNEL = "tracker-tests"
WAIT_SECONDS = 20.0
SCRIPT_TIMEOUT_SECONDS = 90.0

# Short timings: a consumer that lost nsqd (outage tests) is back within a second.
FAST_CONSUMER = nsq.ConsumerOptions(
    backoff_seconds=0.1,
    max_backoff_seconds=0.5,
    reconnect_seconds=0.1,
    max_reconnect_seconds=0.5,
    heartbeat_seconds=1.0,
    drain_timeout_seconds=5.0,
)


@pytest.fixture(scope="session")
def tracker_packages() -> layout.TrackerPackages:
    """The pinned npm packages; a missing one fails the test with the way to get it."""
    packages = layout.current()
    missing = [f"{p.name}@{p.version}" for p in packages.all if not p.is_installed()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not provisioned; run `make provision`", pytrace=False)
    return packages


@dataclasses.dataclass
class RunningCollector:
    """A collector listening on 127.0.0.1; ``url`` is its origin, without a trailing slash."""

    host: str
    port: int
    settings: collector.CollectorSettings

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture
async def collector_service(
    fresh_nsqd: NsqdServer, tmp_path: pathlib.Path
) -> AsyncIterator[RunningCollector]:
    """``snowplow-mini collector`` as a real process, publishing to a private nsqd."""
    port = free_port()
    process = ManagedProcess(
        "collector",
        [str(SNOWPLOW_MINI), "collector", "--host", "127.0.0.1", "--port", str(port)],
        log_path=tmp_path / "collector.log",
        env={**os.environ, "SNOWPLOW_COLLECTOR_NSQ__NSQD_HTTP_ADDRESS": fresh_nsqd.http_address},
    )
    service = RunningCollector(
        host="127.0.0.1",
        port=port,
        # What the process reads too: the same environment, the same flags.
        settings=collector.CollectorSettings(host="127.0.0.1", port=port),
    )
    await asyncio.to_thread(process.start)
    try:
        await asyncio.to_thread(
            wait_until,
            lambda: _answers_health(service.url),
            timeout_seconds=30,
            what="collector /health",
            process=process,
        )
        yield service
    finally:
        await asyncio.to_thread(process.stop)


def _answers_health(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
        return bool(response.status == 200)


class RawEvents:
    """The messages of ``RawEvents`` on nsqd, read on a channel of our own."""

    def __init__(self, nsqd: NsqdServer) -> None:
        self.nsqd = nsqd
        self.messages: list[bytes] = []

    async def handle(self, message: bytes) -> None:
        self.messages.append(message)

    def pending_count(self) -> int:
        """Messages nsqd still holds for our channel: in the topic, queued, or in flight."""
        url = f"{self.nsqd.http_url}/stats?format=json&topic={topics.RAW_EVENTS}"
        with urllib.request.urlopen(url, timeout=5) as response:
            stats = json.load(response)
        pending = 0
        for topic in stats.get("topics") or []:
            pending += topic["depth"]
            for channel in topic["channels"]:
                if channel["channel_name"] == CHANNEL:
                    pending += channel["depth"] + channel["in_flight_count"]
                    pending += channel["deferred_count"]
        return pending

    async def payloads(self, count: int) -> list[payloads.CollectorPayload]:
        """Exactly ``count`` collector payloads, in the order nsqd delivered them.

        Call it once every tracker request was answered: the collector answers only after
        nsqd accepted the messages, so once ``count`` arrived and nsqd holds nothing more for
        our channel, any extra (a duplicate, a stray retry) would already be here.
        """
        deadline = time.monotonic() + WAIT_SECONDS
        while not await self._has_settled(count):
            if time.monotonic() > deadline:
                pending = await asyncio.to_thread(self.pending_count)
                raise AssertionError(
                    f"after {WAIT_SECONDS} s: {len(self.messages)} of {count} messages "
                    f"received from RawEvents, {pending} still pending in nsqd"
                )
            await asyncio.sleep(0.05)
        assert len(self.messages) == count, f"{len(self.messages)} messages on RawEvents"
        return [payloads.deserialize(message) for message in self.messages]

    async def _has_settled(self, count: int) -> bool:
        if len(self.messages) < count:
            return False
        pending: int = await asyncio.to_thread(self.pending_count)
        return pending == 0


@pytest.fixture
async def raw_events(fresh_nsqd: NsqdServer) -> AsyncIterator[RawEvents]:
    """Everything the collector publishes to ``RawEvents`` during the test."""
    received = RawEvents(fresh_nsqd)
    consumer = nsq.NsqConsumer(nsqd_tcp_addresses=[fresh_nsqd.tcp_address], options=FAST_CONSUMER)
    task = asyncio.create_task(consumer.consume(topics.RAW_EVENTS, CHANNEL, received.handle))
    try:
        yield received
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=30)


@dataclasses.dataclass
class ScriptResult:
    """What a Node script printed: its last stdout line as JSON, and its stderr."""

    output: dict[str, Any]
    stderr: str


async def run_node_script(
    script: str, args: Sequence[str], *, node_path: Sequence[pathlib.Path]
) -> ScriptResult:
    """Run ``js/<script>`` with node, the packages on ``NODE_PATH``; fail on a non-zero exit.

    The script runs in its own process group. On the timeout it gets SIGTERM (playwright then
    closes its browser), then SIGKILL. Playwright starts Chromium in a process group of its
    own, but Chromium also exits as soon as its DevTools pipe to node closes, so nothing the
    script started outlives the test.
    """
    env = dict(os.environ, NODE_PATH=os.pathsep.join(map(str, node_path)))
    process = await asyncio.create_subprocess_exec(
        "node",
        str(JS_DIR / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(
            process.communicate(), timeout=SCRIPT_TIMEOUT_SECONDS
        )
    finally:
        if process.returncode is None:
            await _end_process_group(process)
    errors = stderr.decode(errors="replace")
    assert process.returncode == 0, f"{script} exited with {process.returncode}:\n{errors}"
    lines = stdout.decode().strip().splitlines()
    assert lines, f"{script} printed nothing:\n{errors}"
    return ScriptResult(output=json.loads(lines[-1]), stderr=errors)


async def _end_process_group(process: asyncio.subprocess.Process) -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=5)
            return
