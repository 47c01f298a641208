"""A coalescing work queue of SnowplowMini keys, worked by a fixed number of asyncio workers.

Triggers arrive in bursts (a rollout sends a dozen child events), but a reconcile looks at the
whole state, so many triggers for one key collapse into one pending entry. A key is never
worked by two workers at once; a trigger that arrives while its key is being worked runs it
once more afterwards, so no change is missed. Failures are retried with a per-key exponential
backoff; a key that succeeds is forgotten until its next trigger or scheduled recheck.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable

logger = logging.getLogger(__name__)

Work = Callable[[Hashable], Awaitable[float | None]]
MIN_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0


class WorkQueue:
    def __init__(self, work: Work, *, workers: int) -> None:
        self._work = work
        self._workers = workers
        self._ready: asyncio.Queue[Hashable] = asyncio.Queue()
        self._queued: set[Hashable] = set()
        self._active: set[Hashable] = set()
        self._again: set[Hashable] = set()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._failures: dict[Hashable, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: Hashable, delay_seconds: float = 0.0) -> None:
        """Work ``key`` after ``delay_seconds``; an earlier pending time for it wins."""
        if delay_seconds <= 0:
            self._fire(key)
            return
        loop = asyncio.get_running_loop()
        timer = self._timers.get(key)
        if timer is not None and timer.when() <= loop.time() + delay_seconds:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_later(delay_seconds, self._fire, key)

    def forget(self, key: Hashable) -> None:
        """Drop scheduled work of a key (its object is gone); work in progress finishes."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._again.discard(key)
        self._failures.pop(key, None)

    def depth(self) -> int:
        return len(self._queued)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def join(self) -> None:
        """Wait until nothing is queued or being worked (scheduled rechecks do not count)."""
        while self._queued or self._active:
            await asyncio.sleep(0.01)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        if key in self._active:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    async def _worker(self) -> None:
        while True:
            key = await self._ready.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                delay = await self._run(key)
            finally:
                self._active.discard(key)
            if key in self._again:
                self._again.discard(key)
                self._fire(key)
            elif delay is not None:
                self.add(key, delay)

    async def _run(self, key: Hashable) -> float | None:
        try:
            delay = await self._work(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            backoff = min(MIN_BACKOFF_SECONDS * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)
            logger.warning(
                "Reconciling %s failed (%s); retrying in %.0f s.", key, exc, backoff, exc_info=True
            )
            return backoff
        self._failures.pop(key, None)
        return delay
