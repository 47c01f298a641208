"""Batching: many concurrent message handlers, few bulk requests.

The transport calls one handler per message and finishes the message when the handler returns,
so a handler may only return once its document is safely in Elasticsearch. Each handler adds
its document to the open batch and awaits a future; the batch is sent when it holds
``max_documents`` documents or ``max_bytes`` bytes of sources, or ``flush_after_seconds`` after
its first document, whichever comes first; the futures resolve when Elasticsearch has answered
for every document. The transport's in-flight limit therefore bounds the batches.

Every batch has a deadline, ``give_up_after_seconds`` after its first document arrived; the
wait for a free request slot and all the retries fit inside it, and past it the handlers get
``ElasticsearchUnavailableError`` so their messages go back to the transport, to come again
later, instead of outliving the transport's own delivery timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time

from snowplow_pipeline.sink import indexing
from snowplow_pipeline.sink.documents import Document

logger = logging.getLogger(__name__)


class Batcher:
    """Groups documents into bulk requests, at most ``max_concurrent_requests`` at a time."""

    def __init__(
        self,
        writer: indexing.BulkWriter,
        *,
        max_documents: int = 500,
        max_bytes: int = 5_000_000,
        flush_after_seconds: float = 0.5,
        max_concurrent_requests: int = 2,
        give_up_after_seconds: float = 30.0,
    ) -> None:
        self._writer = writer
        self._max_documents = max_documents
        self._max_bytes = max_bytes
        self._flush_after_seconds = flush_after_seconds
        self._give_up_after_seconds = give_up_after_seconds
        self._slots = asyncio.Semaphore(max_concurrent_requests)
        self._documents: list[Document] = []
        self._futures: list[asyncio.Future[str | None]] = []
        self._bytes = 0
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._sends: dict[asyncio.Task[None], list[asyncio.Future[str | None]]] = {}

    async def index(self, document: Document) -> str | None:
        """Return once Elasticsearch has answered for ``document``: ``None`` when it is
        indexed, Elasticsearch's reason when it was refused for good.

        Raises ``indexing.ElasticsearchError`` when the batch could not be sent; the document
        may or may not be indexed then (sending it again is harmless: ids make it idempotent).
        Cancelling the caller does not withdraw the document from its batch.
        """
        if self._documents and self._bytes + document.size_bytes > self._max_bytes:
            self.flush()
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._add(document, future)
        if len(self._documents) >= self._max_documents or self._bytes >= self._max_bytes:
            self.flush()
        return await future

    def flush(self) -> None:
        """Send the open batch now (if it holds anything)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._documents:
            return
        task = asyncio.create_task(
            self._send(documents=self._documents, futures=self._futures, deadline=self._deadline)
        )
        self._sends[task] = self._futures
        task.add_done_callback(self._forget)
        self._documents, self._futures, self._bytes = [], [], 0

    def flush_promptly(self) -> None:
        """Send the open batch now and, from now on, each batch as soon as the loop is free.

        For a graceful shutdown: handlers still waiting for their batch to fill would otherwise
        outlast the drain.
        """
        self._flush_after_seconds = 0.0
        self.flush()

    async def close(self) -> None:
        """Send the open batch and wait for every request under way."""
        self.flush()
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)

    def abandon(self) -> None:
        """Cancel every request under way and fail the open batch, without waiting.

        For shutdown by cancellation: the waiting handlers are cancelled too, and the transport
        delivers their messages again later.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for future in self._futures:
            future.cancel()
        self._documents, self._futures, self._bytes = [], [], 0
        for task, futures in self._sends.items():
            task.cancel()
            for future in futures:  # a task cancelled before it started cannot do it itself
                future.cancel()

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._sends.pop(task, None)

    def _add(self, document: Document, future: asyncio.Future[str | None]) -> None:
        if not self._documents:
            self._deadline = time.monotonic() + self._give_up_after_seconds
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._flush_after_seconds, self.flush)
        self._documents.append(document)
        self._futures.append(future)
        self._bytes += document.size_bytes

    async def _send(
        self,
        *,
        documents: list[Document],
        futures: list[asyncio.Future[str | None]],
        deadline: float,
    ) -> None:
        try:
            outcomes = await self._write(documents, deadline)
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        except Exception as exc:  # supervised here: every waiting handler must hear of it
            if not isinstance(exc, indexing.ElasticsearchError):
                logger.exception("Bulk request of %d documents failed.", len(documents))
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, outcome in zip(futures, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def _write(self, documents: list[Document], deadline: float) -> list[str | None]:
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=deadline - time.monotonic())
        except TimeoutError:
            raise indexing.ElasticsearchUnavailableError(
                f"no free bulk request slot before the deadline for {len(documents)} documents"
            ) from None
        try:
            return await self._writer.write(documents, deadline=deadline)
        finally:
            self._slots.release()
