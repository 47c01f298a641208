"""Topics: the names of the streams between components, and the in-process transport.

Components never talk to each other directly. The collector publishes collector payloads to
``RawEvents``, enrich consumes them and publishes enriched events and bad rows, the sinks
consume those. In a cluster the transport is nsqd; in the local Mini it is ``MemoryTopics``.
Both offer the same two operations, so components do not know which one they run on:

* ``publish(topic, messages)`` returns only once every message is accepted by the transport,
  and raises ``PublishError`` otherwise (the caller then answers 503 or does not acknowledge);
* ``consume(topic, channel, handler)`` calls ``handler(message)`` for each message and treats it
  as done only when the handler returns; a handler that raises gets the message again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

logger = logging.getLogger(__name__)

RAW_EVENTS = "RawEvents"
BAD_RAW_EVENTS = "BadRawEvents"
ENRICHED_EVENTS = "EnrichedEvents"
BAD_ENRICHED_EVENTS = "BadEnrichedEvents"
BAD_ELASTICSEARCH_EVENTS = "BadElasticsearchEvents"

Handler = Callable[[bytes], Awaitable[None]]


class PublishError(Exception):
    """The transport did not accept the messages; nothing can be assumed delivered."""


class Publisher(Protocol):
    async def publish(self, topic: str, messages: Sequence[bytes]) -> None: ...

    async def is_healthy(self) -> bool: ...


class MemoryTopics:
    """In-process topics with NSQ's semantics: every channel of a topic gets every message.

    Messages published before a channel exists are kept for it, as nsqd keeps them for the first
    channel of a topic. A handler failure requeues the message after ``retry_delay_seconds``.
    """

    def __init__(self, *, retry_delay_seconds: float = 1.0) -> None:
        self._channels: dict[str, dict[str, asyncio.Queue[bytes]]] = {}
        self._backlog: dict[str, list[bytes]] = {}
        self._retry_delay_seconds = retry_delay_seconds
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def publish(self, topic: str, messages: Sequence[bytes]) -> None:
        channels = self._channels.get(topic)
        if not channels:
            self._backlog.setdefault(topic, []).extend(messages)
            return
        for queue in channels.values():
            for message in messages:
                self._track(+1)
                queue.put_nowait(message)

    async def is_healthy(self) -> bool:
        return True

    async def consume(self, topic: str, channel: str, handler: Handler) -> None:
        """Run forever, handing each message of ``topic`` on ``channel`` to ``handler``."""
        queue = self._channels.setdefault(topic, {}).setdefault(channel, asyncio.Queue())
        for message in self._backlog.pop(topic, []):
            self._track(+1)
            queue.put_nowait(message)
        while True:
            message = await queue.get()
            try:
                await handler(message)
            except asyncio.CancelledError:
                queue.put_nowait(message)
                raise
            except Exception:
                logger.exception(
                    "Handler failed on %s/%s; the message is requeued.", topic, channel
                )
                asyncio.get_running_loop().call_later(
                    self._retry_delay_seconds, queue.put_nowait, message
                )
                continue
            self._track(-1)

    async def wait_idle(self) -> None:
        """Return once every published message has been handled by every channel."""
        await self._idle.wait()

    def _track(self, delta: int) -> None:
        self._in_flight += delta
        if self._in_flight:
            self._idle.clear()
        else:
            self._idle.set()
