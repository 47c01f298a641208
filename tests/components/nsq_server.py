"""A real nsqd on loopback, restartable on the same ports and data folder.

Fault tests stop nsqd (cleanly or by killing it) and start it again; because the ports and the
data path stay the same, clients can reconnect to the addresses they were given and messages
that nsqd had written to disk survive, as in production.
"""

from __future__ import annotations

import logging
import pathlib
import urllib.request

from tests.components import layout
from tests.components.processes import ManagedProcess, free_port, require_file, wait_until

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 30.0


class NsqdServer:
    """One nsqd. ``tcp_address`` is for consumers, ``http_address`` for publishing over HTTP."""

    def __init__(self, workdir: pathlib.Path, lay: layout.Layout) -> None:
        binary = require_file(lay.binary("nsqd"), "nsqd")
        self.host = "127.0.0.1"
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.version = lay.versions.nsq
        self._process = ManagedProcess(
            "nsqd",
            [
                str(binary),
                f"--tcp-address={self.host}:{self.tcp_port}",
                f"--http-address={self.host}:{self.http_port}",
                f"--broadcast-address={self.host}",
                f"--data-path={self.data_dir}",
                # No HTTPS listener: nsqd's default would be 0.0.0.0:4152 without a certificate.
                "--https-address=",
            ],
            log_path=workdir / "nsqd.log",
        )

    @property
    def tcp_address(self) -> str:
        return f"{self.host}:{self.tcp_port}"

    @property
    def http_address(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.http_address}"

    @property
    def log_path(self) -> pathlib.Path:
        return self._process.log_path

    def is_running(self) -> bool:
        return self._process.is_running()

    def start(self) -> None:
        """Start nsqd and wait until ``/ping`` answers ``OK``."""
        self._process.start()
        wait_until(
            self._is_healthy,
            timeout_seconds=START_TIMEOUT_SECONDS,
            what=f"nsqd {self.http_url}/ping",
            process=self._process,
        )

    def stop(self) -> None:
        """Stop nsqd cleanly (it flushes in-memory messages to the data folder)."""
        self._process.stop()

    def kill(self) -> None:
        """Kill nsqd at once, as a crash would; in-memory messages are lost."""
        self._process.kill()

    def restart(self) -> None:
        """Stop (if running) and start again on the same ports and data folder."""
        self.stop()
        self.start()

    def _is_healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.http_url}/ping", timeout=2) as response:
            return bool(response.read() == b"OK")
