"""Handling: one consumed message in; a document indexed or a bad row routed, then return.

``MessageHandler`` is what the transport calls for each message. It returns, and so lets the
transport finish the message, only when the message has reached one of its two ends:

* its document is acknowledged by Elasticsearch, or
* a bad row about it is accepted by the failure topic (``BadElasticsearchEvents``): a line
  that is not an enriched event, or a document Elasticsearch refused for good (a mapping
  conflict, a field past the limit), routed with Elasticsearch's reason.

Anything else (Elasticsearch unavailable past the deadline, the failure topic refusing)
propagates, and the transport gives the message back later; its own backoff then slows
consumption down while the cause lasts. Redelivery is harmless: documents have stable ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from snowplow_pipeline import topics
from snowplow_pipeline.sink import batching, documents, indexing
from snowplow_pipeline.sink.metrics import SinkMetrics

logger = logging.getLogger(__name__)

Kind = Literal["good", "bad"]
Converter = Callable[..., documents.Document]

CONVERTERS: dict[Kind, Converter] = {
    "good": documents.from_enriched,
    "bad": documents.from_bad_row,
}
TOPICS: dict[Kind, tuple[str, ...]] = {
    "good": (topics.ENRICHED_EVENTS,),
    "bad": (topics.BAD_RAW_EVENTS, topics.BAD_ENRICHED_EVENTS),
}


class MessageHandler:
    """Turns messages of one kind into documents of one index."""

    def __init__(
        self,
        *,
        kind: Kind,
        index: str,
        batcher: batching.Batcher,
        failures: topics.Publisher,
        metrics: SinkMetrics,
        max_failure_bytes: int = 1024 * 1024,
    ) -> None:
        self._convert = CONVERTERS[kind]
        self._max_failure_bytes = max_failure_bytes
        self._index = index
        self._batcher = batcher
        self._failures = failures
        self._metrics = metrics

    def for_topic(self, topic: str) -> topics.Handler:
        """The handler to give the transport for ``topic`` (the topic labels the metrics)."""

        async def handle(message: bytes) -> None:
            await self.handle(message, topic=topic)

        return handle

    async def handle(self, message: bytes, *, topic: str) -> None:
        """Index ``message`` or route a bad row about it; raise to have it delivered again."""
        try:
            document = self._convert(message, index=self._index)
        except documents.UnreadableMessageError as exc:
            await self._route(exc.bad_row, topic=topic, why="it cannot be read")
            return

        try:
            with self._metrics.documents_waiting.track_inprogress():
                reason = await self._batcher.index(document)
        except indexing.ElasticsearchError:
            self._metrics.messages.labels(topic, "requeued").inc()
            raise
        if reason is None:
            self._metrics.messages.labels(topic, "indexed").inc()
            return

        row = documents.rejected(document, reason=reason)
        await self._route(row, topic=topic, why=f"Elasticsearch rejected it: {reason}")

    async def _route(self, row: dict[str, object], *, topic: str, why: str) -> None:
        try:
            message = documents.failure_message(row, max_bytes=self._max_failure_bytes)
            await self._failures.publish(topics.BAD_ELASTICSEARCH_EVENTS, [message])
        except topics.PublishError:
            self._metrics.messages.labels(topic, "requeued").inc()
            raise
        self._metrics.messages.labels(topic, "routed").inc()
        logger.warning(
            "A message from %s went to %s because %s.",
            topic,
            topics.BAD_ELASTICSEARCH_EVENTS,
            why,
        )
