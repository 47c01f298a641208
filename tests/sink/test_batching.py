"""Batching: concurrent handlers share bulk requests and each hears its own outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import pytest

from snowplow_pipeline.sink import batching, indexing
from snowplow_pipeline.sink.documents import Document

WAIT_SECONDS = 5.0


class RecordingWriter:
    """A ``BulkWriter`` stand-in: records each batch and answers with ``decide``."""

    def __init__(
        self,
        decide: Callable[[Sequence[Document]], list[str | None]] | None = None,
        *,
        hold: asyncio.Event | None = None,
    ) -> None:
        self.batches: list[list[str]] = []
        self.deadlines: list[float] = []
        self._decide = decide or (lambda documents: [None] * len(documents))
        self._hold = hold

    async def write(self, documents: Sequence[Document], *, deadline: float) -> list[str | None]:
        self.batches.append([document.id for document in documents])
        self.deadlines.append(deadline)
        if self._hold is not None:
            await self._hold.wait()
        return self._decide(documents)


def document(number: int, *, size_bytes: int = 10) -> Document:
    return Document(index="good", id=f"doc-{number}", source=b"x" * size_bytes, message=b"m")


def batcher_for(writer: RecordingWriter, **options: float) -> batching.Batcher:
    return batching.Batcher(writer, **options)  # type: ignore[arg-type]


async def index_all(batcher: batching.Batcher, docs: list[Document]) -> list[str | None]:
    return await asyncio.wait_for(
        asyncio.gather(*(batcher.index(d) for d in docs)), timeout=WAIT_SECONDS
    )


async def test_batch_is_sent_as_soon_as_it_holds_max_documents() -> None:
    writer = RecordingWriter()
    batcher = batcher_for(writer, max_documents=3, flush_after_seconds=60)

    outcomes = await index_all(batcher, [document(n) for n in range(6)])

    assert outcomes == [None] * 6
    assert writer.batches == [["doc-0", "doc-1", "doc-2"], ["doc-3", "doc-4", "doc-5"]]


async def test_document_that_would_pass_max_bytes_starts_a_new_batch() -> None:
    writer = RecordingWriter()
    batcher = batcher_for(writer, max_documents=100, max_bytes=25, flush_after_seconds=60)

    await index_all(batcher, [document(0), document(1), document(2), document(3, size_bytes=25)])

    assert writer.batches == [["doc-0", "doc-1"], ["doc-2"], ["doc-3"]]


async def test_partial_batch_is_sent_flush_after_seconds_after_its_first_document() -> None:
    writer = RecordingWriter()
    batcher = batcher_for(writer, max_documents=100, flush_after_seconds=0.2)
    started = time.monotonic()

    await index_all(batcher, [document(0), document(1)])

    assert writer.batches == [["doc-0", "doc-1"]]
    assert 0.15 <= time.monotonic() - started < 2.0


async def test_each_handler_hears_the_outcome_of_its_own_document() -> None:
    def refuse_odd(documents: Sequence[Document]) -> list[str | None]:
        return [None if d.id[-1] in "02468" else f"refused {d.id}" for d in documents]

    batcher = batcher_for(RecordingWriter(refuse_odd), max_documents=4)

    outcomes = await index_all(batcher, [document(n) for n in range(4)])

    assert outcomes == [None, "refused doc-1", None, "refused doc-3"]


async def test_every_handler_of_a_batch_hears_that_elasticsearch_is_unavailable() -> None:
    def fail(documents: Sequence[Document]) -> list[str | None]:
        raise indexing.ElasticsearchUnavailableError("connection refused")

    batcher = batcher_for(RecordingWriter(fail), max_documents=2)

    results = await asyncio.gather(
        batcher.index(document(0)), batcher.index(document(1)), return_exceptions=True
    )

    assert [type(r) for r in results] == [indexing.ElasticsearchUnavailableError] * 2


async def test_batch_waiting_for_a_request_slot_gives_up_at_its_deadline() -> None:
    hold = asyncio.Event()
    writer = RecordingWriter(hold=hold)
    batcher = batcher_for(
        writer, max_documents=1, max_concurrent_requests=1, give_up_after_seconds=0.3
    )
    first = asyncio.create_task(batcher.index(document(0)))

    with pytest.raises(indexing.ElasticsearchUnavailableError, match="no free bulk request slot"):
        await asyncio.wait_for(batcher.index(document(1)), timeout=WAIT_SECONDS)

    hold.set()
    assert await first is None
    assert writer.batches == [["doc-0"]]


async def test_close_sends_the_open_batch_and_waits_for_it() -> None:
    writer = RecordingWriter()
    batcher = batcher_for(writer, max_documents=100, flush_after_seconds=60)
    pending = asyncio.create_task(batcher.index(document(0)))
    await asyncio.sleep(0)

    await asyncio.wait_for(batcher.close(), timeout=WAIT_SECONDS)

    assert writer.batches == [["doc-0"]]
    assert await pending is None


async def test_abandon_cancels_the_requests_under_way_and_the_handlers_waiting_on_them() -> None:
    hold = asyncio.Event()
    batcher = batcher_for(RecordingWriter(hold=hold), max_documents=1, flush_after_seconds=60)
    sent = asyncio.create_task(batcher.index(document(0)))
    batcher_open = batcher_for(RecordingWriter(), max_documents=100, flush_after_seconds=60)
    waiting = asyncio.create_task(batcher_open.index(document(1)))
    await asyncio.sleep(0)

    batcher.abandon()
    batcher_open.abandon()

    results = await asyncio.wait_for(
        asyncio.gather(sent, waiting, return_exceptions=True), timeout=WAIT_SECONDS
    )
    assert [type(r) for r in results] == [asyncio.CancelledError] * 2
