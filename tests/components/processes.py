"""Start, watch and stop the server processes of the test components.

Every process starts in its own session, so it and whatever it forks form one process group
that can be stopped as a unit, and with a parent-death signal, so it dies with the test run
even when the run itself is killed. Live processes are kept in a registry that an ``atexit``
hook and the SIGTERM/SIGHUP handlers (installed by the pytest plugin) drain: a failing or
interrupted run leaves nothing behind. Only processes started here are ever signalled.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import ctypes
import logging
import os
import pathlib
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
# Insertion-ordered, so that stop_all() stops in reverse start order (etcd last).
_live: dict[int, ManagedProcess] = {}
_live_lock = threading.RLock()  # re-entered when a signal handler interrupts a holder


_SpawnRequest = tuple[concurrent.futures.Future[Any], Callable[[], Any]]


class _Spawner:
    """The one thread every child is forked from.

    The kernel sends a child its death signal when the *thread* that forked it ends, not the
    process: a server started from a short-lived thread (``asyncio.to_thread``, whose workers
    end with their event loop) would be killed in the middle of the run. This thread is a
    daemon, so it ends with the process, after ``stop_all`` has stopped the children in order.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[_SpawnRequest] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="process-spawner", daemon=True).start()

    def run(self, start: Callable[[], T]) -> T:
        """``start()`` called on the spawner thread; its result or its exception."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._requests.put((future, start))
        return future.result()

    def _serve(self) -> None:
        while True:
            future, start = self._requests.get()
            try:
                future.set_result(start())
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)


_spawner = _Spawner()


class ComponentError(Exception):
    """A test component is missing, failed to start, or did not become healthy in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool],
    *,
    timeout_seconds: float,
    what: str,
    interval_seconds: float = 0.2,
    process: ManagedProcess | None = None,
) -> None:
    """Poll ``check`` until it returns true; raise ``ComponentError`` at the deadline.

    Exceptions raised by ``check`` count as "not yet". With ``process``, its early exit ends
    the wait at once, with the tail of its log in the error.
    """
    deadline = time.monotonic() + timeout_seconds
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if process is not None and not process.is_running():
            raise ComponentError(
                f"{process.name} exited while waiting for {what}\n{process.log_tail()}"
            )
        try:
            if check():
                return
        except Exception as exc:  # any failure of a probe means "not ready yet"
            last_error = exc
        time.sleep(interval_seconds)
    detail = f" (last error: {last_error!r})" if last_error else ""
    tail = f"\n{process.log_tail()}" if process is not None else ""
    raise ComponentError(
        f"timed out after {timeout_seconds:.0f} s waiting for {what}{detail}{tail}"
    )


def require_file(path: pathlib.Path, what: str) -> pathlib.Path:
    """Fail (never skip) when a provisioned file is absent, saying how to get it."""
    if not path.exists():
        raise ComponentError(
            f"{what} is missing at {path}; run `make provision` "
            "(.venv/bin/python tests/components/provision.py) first"
        )
    return path


def _die_with_parent() -> None:
    # Runs in the child between fork and exec (after any user switch, which would clear it).
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """One server process (and its process group) with its output in a log file."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        log_path: pathlib.Path,
        env: Mapping[str, str] | None = None,
        cwd: pathlib.Path | None = None,
        user: int | None = None,
        group: int | None = None,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._user = user
        self._group = group
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the process; its output is appended to the log (restarts keep the history)."""
        if self.is_running():
            raise ComponentError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = _spawner.run(
                lambda: subprocess.Popen(
                    self.args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env,
                    cwd=self._cwd,
                    user=self._user,
                    group=self._group,
                    extra_groups=[] if self._group is not None else None,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            )
        with _live_lock:
            _live[id(self)] = self
        logger.info("Started %s (pid %s); its log is %s.", self.name, self.pid, self.log_path)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, *, timeout_seconds: float = 20.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after the timeout. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                self._signal_group(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout_seconds)
                except subprocess.TimeoutExpired:
                    logger.warning(
                        "%s ignored SIGTERM for %.0f s; killing it.", self.name, timeout_seconds
                    )
            # Children that outlived the leader are still in its group: kill them too.
            self._signal_group(signal.SIGKILL)
            proc.wait(timeout=timeout_seconds)
        finally:
            with _live_lock:
                _live.pop(id(self), None)
        logger.info("Stopped %s (pid %s).", self.name, proc.pid)

    def kill(self) -> None:
        """Kill the process group at once, as a crash would (for fault tests)."""
        if self._proc is not None:
            self._signal_group(signal.SIGKILL)
            self._proc.wait(timeout=20)
            with _live_lock:
                _live.pop(id(self), None)

    def _signal_group(self, signum: int) -> None:
        assert self._proc is not None
        # The group id is the pid of the leader we started (start_new_session=True).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signum)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last lines of {self.log_path} ---\n{tail}"


def stop_all() -> None:
    """Stop every process still registered (used at exit and on termination signals)."""
    with _live_lock:
        remaining = list(_live.values())
    for process in reversed(remaining):
        try:
            process.stop(timeout_seconds=10)
        except Exception:  # keep stopping the others
            logger.exception("Could not stop %s cleanly.", process.name)


def install_signal_handlers() -> None:
    """On SIGTERM/SIGHUP stop our processes, then end the run as Ctrl-C would.

    A signal that is ignored (``nohup``) stays ignored; a handler installed before is called
    after our processes are stopped, in place of ending the run.
    """
    for signum in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(signum)
        if previous != signal.SIG_IGN:
            signal.signal(signum, _make_handler(previous))


def _make_handler(previous: object) -> Callable[[int, object], None]:
    def handle(signum: int, frame: object) -> None:
        stop_all()
        if callable(previous):
            previous(signum, frame)
            return
        # pytest ends the session on KeyboardInterrupt (running the fixture teardowns);
        # a SystemExit would only fail the current test and carry on.
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    return handle


atexit.register(stop_all)
