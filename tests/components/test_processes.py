"""Servers started for tests live as long as the test run, whichever thread started them."""

from __future__ import annotations

import asyncio
import pathlib
import shutil
import threading

import pytest

from tests.components.processes import ComponentError, ManagedProcess, wait_until


def sleeper(tmp_path: pathlib.Path) -> ManagedProcess:
    sleep = shutil.which("sleep")
    assert sleep is not None
    return ManagedProcess("sleeper", [sleep, "300"], log_path=tmp_path / "sleeper.log")


def test_process_started_from_a_thread_that_ends_keeps_running(tmp_path: pathlib.Path) -> None:
    process = sleeper(tmp_path)
    starter = threading.Thread(target=process.start)
    starter.start()
    starter.join()
    try:
        # A death signal tied to the ended thread would arrive at once; give it time to.
        with pytest.raises(ComponentError):
            wait_until(lambda: not process.is_running(), timeout_seconds=1.0, what="an exit")
        assert process.is_running()
    finally:
        process.stop()
    assert not process.is_running()


async def test_process_started_with_to_thread_outlives_the_worker_threads(
    tmp_path: pathlib.Path,
) -> None:
    process = sleeper(tmp_path)
    await asyncio.to_thread(process.start)
    # Ending the loop's default executor ends the worker thread that made the call.
    await asyncio.get_running_loop().shutdown_default_executor()
    try:
        with pytest.raises(ComponentError):
            wait_until(lambda: not process.is_running(), timeout_seconds=1.0, what="an exit")
    finally:
        process.stop()


def test_a_command_that_cannot_start_raises_in_the_caller(tmp_path: pathlib.Path) -> None:
    process = ManagedProcess(
        "missing", [str(tmp_path / "no-such-binary")], log_path=tmp_path / "missing.log"
    )

    with pytest.raises(FileNotFoundError):
        process.start()
    assert not process.is_running()
