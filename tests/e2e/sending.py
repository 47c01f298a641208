"""A steady stream of events that retries like a tracker, and counts what was acknowledged.

Each event is one ``GET /i`` with its own event id (``eid``). A request that fails to connect,
times out or gets a non-2xx answer is sent again, with the same id, after a short backoff, as
the trackers do; an event counts as sent once the collector answered it with 2xx. Every fifth
event is a self-describing event that breaks its schema, so that both sinks always have work.
The stream is bounded in count and time and ends by itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections import Counter

import aiohttp

CHECKOUT = "iglu:com.acme/checkout/jsonschema/1-0-0"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
BAD_EVERY = 5
REQUEST_TIMEOUT_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 1.0


@dataclasses.dataclass
class Stream:
    """What one stream sent: acknowledged ids (good or bad by intent), and what it took."""

    app_id: str
    good: list[str] = dataclasses.field(default_factory=list)
    bad: list[str] = dataclasses.field(default_factory=list)
    failed_attempts: Counter[str] = dataclasses.field(default_factory=Counter)
    unacknowledged: list[str] = dataclasses.field(default_factory=list)
    acknowledged_at: dict[str, float] = dataclasses.field(default_factory=dict)
    started_at: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def sent(self) -> list[str]:
        return self.good + self.bad


def parameters(event_id: str, *, app_id: str, is_bad: bool) -> dict[str, str]:
    """The query of one event: a page view, or a checkout whose price is not a number."""
    common = {"eid": event_id, "aid": app_id, "p": "web", "tv": "e2e-stream-0.1"}
    if not is_bad:
        return {**common, "e": "pv", "url": f"https://shop.test/{event_id}", "page": "Stream"}
    checkout = {"schema": CHECKOUT, "data": {"price": "free", "sku": event_id}}
    return {**common, "e": "ue", "ue_pr": json.dumps({"schema": UNSTRUCT, "data": checkout})}


async def send_steadily(
    collector_url: str,
    *,
    app_id: str,
    per_second: float,
    count: int,
    give_up_after_seconds: float = 120.0,
    bad_every: int = BAD_EVERY,
    stream: Stream | None = None,
) -> Stream:
    """Start ``count`` events at ``per_second``; return once each was acknowledged or given up.

    An event still unacknowledged ``give_up_after_seconds`` after its first try is recorded in
    ``unacknowledged`` (not sent), so a stream never outlives its bound. Every ``bad_every``-th
    event is bad (0: none). Pass ``stream`` to watch it fill while the events go out.
    """
    stream = stream or Stream(app_id=app_id)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.monotonic()
        tasks = []
        for number in range(count):
            await asyncio.sleep(max(0.0, started + number / per_second - time.monotonic()))
            is_bad = bad_every > 0 and number % bad_every == bad_every - 1
            event = _send_until_acknowledged(
                session,
                f"{collector_url}/i",
                stream=stream,
                event_id=str(uuid.uuid4()),
                is_bad=is_bad,
                give_up_after_seconds=give_up_after_seconds,
            )
            tasks.append(asyncio.create_task(event))
        await asyncio.gather(*tasks)
    return stream


async def _send_until_acknowledged(
    session: aiohttp.ClientSession,
    url: str,
    *,
    stream: Stream,
    event_id: str,
    is_bad: bool,
    give_up_after_seconds: float,
) -> None:
    query = parameters(event_id, app_id=stream.app_id, is_bad=is_bad)
    first_try = stream.started_at[event_id] = time.monotonic()
    backoff_seconds = 0.1
    while time.monotonic() - first_try < give_up_after_seconds:
        try:
            async with session.get(url, params=query) as response:
                await response.read()
                if 200 <= response.status < 300:
                    stream.acknowledged_at[event_id] = time.monotonic()
                    (stream.bad if is_bad else stream.good).append(event_id)
                    return
                stream.failed_attempts[f"HTTP {response.status}"] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            stream.failed_attempts[type(exc).__name__] += 1
        await asyncio.sleep(backoff_seconds)
        backoff_seconds = min(backoff_seconds * 2, MAX_BACKOFF_SECONDS)
    stream.unacknowledged.append(event_id)
