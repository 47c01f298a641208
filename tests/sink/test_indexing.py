"""The Elasticsearch boundary: which failures are retried, which are final, and when to stop.

A scripted stand-in for Elasticsearch's ``_bulk`` endpoint on 127.0.0.1 answers each request
with the next scripted answer, so each test chooses exactly what the client sees.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from snowplow_pipeline.sink import indexing
from snowplow_pipeline.sink.documents import Document
from snowplow_pipeline.sink.metrics import SinkMetrics
from tests.components.processes import free_port

PRODUCT_HEADER = {"X-Elastic-Product": "Elasticsearch"}
Answer = Callable[[list[str]], web.Response]


def items(*statuses: int) -> Answer:
    """A bulk answer giving each document (in order) its status."""

    def answer(ids: list[str]) -> web.Response:
        results = []
        for document_id, status in zip(ids, statuses, strict=True):
            result: dict[str, Any] = {"_id": document_id, "status": status}
            if status >= 300:
                result["error"] = {
                    "type": "document_parsing_exception",
                    "reason": f"failed to parse {document_id}",
                    "caused_by": {"type": "illegal_argument_exception", "reason": "For input"},
                }
            results.append({"index": result})
        body = {"errors": any(s >= 300 for s in statuses), "items": results}
        return web.json_response(body, headers=PRODUCT_HEADER)

    return answer


def whole_request(status: int) -> Answer:
    def answer(ids: list[str]) -> web.Response:
        body = {"error": {"type": "some_exception", "reason": "no"}, "status": status}
        return web.json_response(body, status=status, headers=PRODUCT_HEADER)

    return answer


class ScriptedBulk:
    """Answers ``_bulk`` requests from a script; records the ids each request carried."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.requests: list[list[str]] = []
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        lines = (await request.read()).splitlines()
        ids = [json.loads(line)["index"]["_id"] for line in lines[::2]]
        self.requests.append(ids)
        return self.script.pop(0)(ids)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture
async def bulk() -> AsyncIterator[ScriptedBulk]:
    scripted = ScriptedBulk()
    app = web.Application()
    app.router.add_route("*", "/_bulk", scripted.handle)
    scripted.server = TestServer(app, host="127.0.0.1")
    await scripted.server.start_server()
    try:
        yield scripted
    finally:
        await scripted.server.close()


def documents(count: int) -> list[Document]:
    return [Document(index="good", id=f"d{n}", source=b"{}", message=b"m") for n in range(count)]


async def write(url: str, docs: list[Document], *, within_seconds: float = 5.0) -> Any:
    client = indexing.connect(urls=[url], request_timeout_seconds=2)
    writer = indexing.BulkWriter(
        client, initial_backoff_seconds=0.05, max_backoff_seconds=0.2, metrics=SinkMetrics.create()
    )
    try:
        return await writer.write(docs, deadline=time.monotonic() + within_seconds)
    finally:
        await client.close()


async def test_only_documents_that_got_429_or_5xx_are_sent_again(bulk: ScriptedBulk) -> None:
    bulk.script = [items(201, 429, 503, 200), items(201, 200)]

    outcomes = await write(bulk.url, documents(4))

    assert outcomes == [None, None, None, None]
    assert bulk.requests == [["d0", "d1", "d2", "d3"], ["d1", "d2"]]


async def test_document_refused_for_good_gets_elasticsearchs_reason_and_is_not_retried(
    bulk: ScriptedBulk,
) -> None:
    bulk.script = [items(201, 400)]

    outcomes = await write(bulk.url, documents(2))

    assert outcomes == [
        None,
        "document_parsing_exception: failed to parse d1 "
        "(caused by illegal_argument_exception: For input)",
    ]
    assert len(bulk.requests) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503], ids=str)
async def test_whole_request_answered_with_a_transient_status_is_retried(
    bulk: ScriptedBulk, status: int
) -> None:
    bulk.script = [whole_request(status), whole_request(status), items(201)]

    outcomes = await write(bulk.url, documents(1))

    assert outcomes == [None]
    assert len(bulk.requests) == 3


async def test_whole_request_refused_as_wrong_is_not_retried(bulk: ScriptedBulk) -> None:
    bulk.script = [whole_request(401)]

    with pytest.raises(indexing.ElasticsearchRequestError, match="HTTP 401"):
        await write(bulk.url, documents(1))

    assert len(bulk.requests) == 1


async def test_transient_failures_past_the_deadline_make_elasticsearch_unavailable(
    bulk: ScriptedBulk,
) -> None:
    bulk.script = [whole_request(503)] * 100
    started = time.monotonic()

    with pytest.raises(indexing.ElasticsearchUnavailableError, match="gave up on 1 documents"):
        await write(bulk.url, documents(1), within_seconds=0.5)

    assert 0.2 < time.monotonic() - started < 2.0
    assert len(bulk.requests) >= 3


async def test_unreachable_elasticsearch_is_retried_until_the_deadline() -> None:
    unused_url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(indexing.ElasticsearchUnavailableError, match="ConnectionError"):
        await write(unused_url, documents(1), within_seconds=0.5)
