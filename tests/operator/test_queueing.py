"""The coalescing work queue that runs reconciles."""

from __future__ import annotations

import asyncio

import pytest

from snowplow_operator import queueing


async def test_triggers_for_a_waiting_key_collapse_into_one_run() -> None:
    runs: list[str] = []

    async def work(key: object) -> None:
        runs.append(str(key))

    queue = queueing.WorkQueue(work, workers=2)
    for _ in range(5):
        queue.add("a")
    queue.add("b")
    queue.start()
    await queue.join()
    await queue.stop()

    assert sorted(runs) == ["a", "b"]


async def test_a_trigger_during_a_run_runs_the_key_once_more_never_at_once() -> None:
    running = 0
    overlaps = 0
    runs = 0
    release = asyncio.Event()

    async def work(key: object) -> None:
        nonlocal running, overlaps, runs
        running += 1
        overlaps += running > 1
        runs += 1
        if runs == 1:
            await release.wait()
        running -= 1

    queue = queueing.WorkQueue(work, workers=4)
    queue.start()
    queue.add("a")
    await asyncio.sleep(0.05)
    queue.add("a")
    queue.add("a")
    release.set()
    await asyncio.sleep(0.05)
    await queue.join()
    await queue.stop()

    assert (runs, overlaps) == (2, 0)


async def test_a_failing_key_is_retried_with_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queueing, "MIN_BACKOFF_SECONDS", 0.01)
    attempts = 0

    async def work(key: object) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("API server unavailable")

    queue = queueing.WorkQueue(work, workers=1)
    queue.start()
    queue.add("a")
    for _ in range(100):
        if attempts >= 3:
            break
        await asyncio.sleep(0.01)
    await queue.stop()

    assert attempts == 3


async def test_a_requested_recheck_runs_after_its_delay() -> None:
    runs = 0

    async def work(key: object) -> float | None:
        nonlocal runs
        runs += 1
        return 0.02 if runs == 1 else None

    queue = queueing.WorkQueue(work, workers=1)
    queue.start()
    queue.add("a")
    await asyncio.sleep(0.1)
    await queue.stop()

    assert runs == 2
