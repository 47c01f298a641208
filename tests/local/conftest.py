"""Fixtures that run the local Mini as a real process, and a static Iglu registry over HTTP."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SELF_DESC = (
    "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"
)


def iglu_schema(vendor: str, name: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": SELF_DESC,
        "self": {"vendor": vendor, "name": name, "format": "jsonschema", "version": version},
        **body,
    }


TEST_SCHEMAS = [
    iglu_schema(
        "com.acme",
        "checkout",
        "1-0-0",
        {
            "type": "object",
            "properties": {"price": {"type": "number", "minimum": 0}, "sku": {"type": "string"}},
            "required": ["price", "sku"],
            "additionalProperties": False,
        },
    ),
    iglu_schema(
        "com.acme",
        "user",
        "1-0-0",
        {
            "type": "object",
            "properties": {"id": {"type": "string"}, "plan": {"enum": ["free", "pro"]}},
            "required": ["id"],
        },
    ),
    iglu_schema(
        "com.acme",
        "device",
        "1-0-0",
        {"type": "object", "properties": {"model": {"type": "string"}}, "required": ["model"]},
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StaticRegistry:
    """A static Iglu registry: plain files served over HTTP, as Iglu Central serves them."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)

    def add(self, schema: dict[str, Any]) -> str:
        s = schema["self"]
        path = self.root / "schemas" / s["vendor"] / s["name"] / s["format"] / s["version"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema))
        return f"iglu:{s['vendor']}/{s['name']}/{s['format']}/{s['version']}"


@pytest.fixture
def static_registry(tmp_path: Path) -> Iterator[StaticRegistry]:
    root = tmp_path / "registry"
    root.mkdir()
    registry = StaticRegistry(root=root, url="")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            registry.requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    registry.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for schema in TEST_SCHEMAS:
        registry.add(schema)
    yield registry
    server.shutdown()
    server.server_close()


def resolver_config(*repositories: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
        "data": {"cacheSize": 500, "cacheTtl": 60, "repositories": list(repositories)},
    }


def http_repository(
    name: str, url: str, *, priority: int = 0, prefixes: list[str] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "priority": priority,
        "vendorPrefixes": prefixes or [],
        "connection": {"http": {"uri": url}},
    }


@dataclass
class LocalMini:
    url: str
    process: subprocess.Popen[str]
    tsv_lines: list[str]

    def get_json(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def wait_for(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        count: int,
        timeout_seconds: float = 30,
    ) -> list[dict[str, Any]]:
        """Poll an events API route until it lists ``count`` items (newest first)."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            items = self.get_json(path, body)
            if len(items) >= count or time.monotonic() > deadline:
                assert len(items) == count, f"{path}: expected {count} items, got {items}"
                return items
            time.sleep(0.1)


def snowplow_mini_command() -> str:
    command = Path(sys.executable).with_name("snowplow-mini")
    return str(command) if command.exists() else shutil.which("snowplow-mini") or "snowplow-mini"


@contextlib.contextmanager
def run_local_mini(
    tmp_path: Path, *, resolver: dict[str, Any] | None, extra_args: tuple[str, ...] = ()
) -> Iterator[LocalMini]:
    port = free_port()
    args = [snowplow_mini_command(), "local", "--port", str(port), "--output-tsv", *extra_args]
    if resolver is not None:
        config = tmp_path / "resolver.json"
        config.write_text(json.dumps(resolver))
        args += ["--iglu", str(config)]
    # stderr goes to a file: a pipe nobody reads fills up and freezes a busy Mini.
    stderr = (tmp_path / "local-mini.log").open("w")
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    threading.Thread(
        target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True
    ).start()
    mini = LocalMini(url=f"http://127.0.0.1:{port}", process=process, tsv_lines=lines)
    try:
        _wait_healthy(mini, log=tmp_path / "local-mini.log")
        yield mini
    finally:
        stderr.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_healthy(mini: LocalMini, *, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if mini.process.poll() is not None:
            raise RuntimeError(f"snowplow-mini local exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(mini.url + "/health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError("snowplow-mini local did not become healthy within 60 s")


@pytest.fixture
def local_mini(tmp_path: Path, static_registry: StaticRegistry) -> Iterator[LocalMini]:
    resolver = resolver_config(
        http_repository("Test registry", static_registry.url, prefixes=["com.acme"])
    )
    with run_local_mini(tmp_path, resolver=resolver) as mini:
        yield mini
