"""A static Iglu registry for tests: schema files in Iglu layout, served on 127.0.0.1.

It answers the static layout ``GET {url}/schemas/{vendor}/{name}/{format}/{version}`` like a
web server in front of a static registry (or Iglu Central): 200 with the file, 404 without.
Tests can also make it misbehave (``fail``), hold answers back (``hold``/``release``) and see
every request it got (``requests``).

Use it from an async test with the ``static_iglu_registry`` fixture (import it into a
conftest), or from a synchronous test, for a pipeline running in another process or thread,
with ``serving_in_thread(folder)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp import web

SELF_DESC_META = (
    "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#"
)


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]


def iglu_schema(uri: str, body: dict[str, Any]) -> dict[str, Any]:
    """An Iglu schema for ``uri``: ``body`` plus ``$schema`` and a matching ``self``."""
    vendor, name, format_, version = uri.removeprefix("iglu:").split("/")
    self_block = {"vendor": vendor, "name": name, "format": format_, "version": version}
    return {"$schema": SELF_DESC_META, "self": self_block, **body}


class StaticIgluRegistry:
    """A static Iglu registry whose schemas live in ``root/schemas/...``."""

    def __init__(self, root: Path, *, prefix: str = "") -> None:
        self.root = Path(root)
        self.prefix = prefix.rstrip("/")
        self.requests: list[RecordedRequest] = []
        self._failures: dict[str, list[int]] = {}
        self._released = asyncio.Event()
        self._released.set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def add(self, uri: str, schema: dict[str, Any]) -> Path:
        """Publish ``schema`` under the schema key ``uri`` (``iglu:vendor/name/format/m-r-a``)."""
        path = self.root / "schemas" / uri.removeprefix("iglu:")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema))
        return path

    def fail(self, uri: str, *statuses: int) -> None:
        """Answer the next requests for ``uri`` with these HTTP statuses, in order."""
        self._failures.setdefault(uri.removeprefix("iglu:"), []).extend(statuses)

    def hold(self) -> None:
        """Keep every answer back until ``release()``; requests are still recorded."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def requests_for(self, uri: str) -> list[RecordedRequest]:
        wanted = f"{self.prefix}/schemas/{uri.removeprefix('iglu:')}"
        return [request for request in self.requests if request.path == wanted]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(self.prefix + "/schemas/{key:.+}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{port}{self.prefix}"

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StaticIgluRegistry:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(RecordedRequest(path=request.path, headers=dict(request.headers)))
        await self._released.wait()
        key = request.match_info["key"]
        statuses = self._failures.get(key)
        if statuses:
            return web.Response(status=statuses.pop(0), text="injected failure")
        file = self.root / "schemas" / key
        if ".." in key.split("/") or not file.is_file():
            return web.Response(status=404, text="not found")
        return web.Response(body=file.read_bytes(), content_type="application/json")


@pytest_asyncio.fixture
async def static_iglu_registry(tmp_path: Path) -> AsyncIterator[StaticIgluRegistry]:
    """A running static registry, empty until the test calls ``add``."""
    async with StaticIgluRegistry(tmp_path / "static-iglu") as registry:
        yield registry


@contextlib.contextmanager
def serving_in_thread(root: Path, *, prefix: str = "") -> Iterator[StaticIgluRegistry]:
    """Run a static registry on its own event loop in a thread, for synchronous tests.

    ``add`` may be called from the test's thread; ``fail`` and ``hold`` are for async tests.
    """
    loop = asyncio.new_event_loop()
    registry_box: list[StaticIgluRegistry] = []

    async def make_and_start() -> None:
        registry = StaticIgluRegistry(root, prefix=prefix)
        await registry.start()
        registry_box.append(registry)

    thread = threading.Thread(target=loop.run_forever, name="static-iglu", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(make_and_start(), loop).result(timeout=10)
    try:
        yield registry_box[0]
    finally:
        asyncio.run_coroutine_threadsafe(registry_box[0].stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


__all__ = [
    "RecordedRequest",
    "StaticIgluRegistry",
    "iglu_schema",
    "serving_in_thread",
    "static_iglu_registry",
]
