"""Indexing: the Elasticsearch boundary of the sink (bulk requests, retries, index setup).

Everything that talks to Elasticsearch is here, and the client's exceptions stop here: callers
see ``ElasticsearchUnavailableError`` (retry later: the cluster did not answer, or answered
429 or 5xx until the deadline) or ``ElasticsearchRequestError`` (the request itself is wrong;
retrying the same request will not help). A document that Elasticsearch refuses for good, such
as a mapping conflict or a field past the limit, is not an exception: ``BulkWriter.write``
returns the reason for it, so the caller can route it and carry on with the rest of the batch.

Retries are ours, not the client's (its own are switched off), so that one policy decides what
is transient: connection errors, timeouts, 429 and 5xx, whole requests or single items. Only
the items that failed transiently are sent again, with exponential backoff, until a deadline
the caller chooses (the transport redelivers unacknowledged messages after its own timeout, so
holding them longer helps nobody).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import elastic_transport
import elasticsearch

from snowplow_pipeline.sink import templates
from snowplow_pipeline.sink.documents import Document
from snowplow_pipeline.sink.metrics import SinkMetrics

logger = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({404, 408, 429})
RESPONSE_FILTER = ["errors", "items.*.status", "items.*.error"]


class ElasticsearchError(Exception):
    """Base of the errors this boundary raises."""


class ElasticsearchUnavailableError(ElasticsearchError):
    """Elasticsearch did not take the request before the deadline; try again later."""


class ElasticsearchRequestError(ElasticsearchError):
    """Elasticsearch refused the request itself (bad credentials, bad template, ...)."""


def connect(
    *,
    urls: Sequence[str],
    username: str | None = None,
    password: str | None = None,
    request_timeout_seconds: float = 30.0,
) -> elasticsearch.AsyncElasticsearch:
    """A client with retries off (``BulkWriter`` retries) and basic auth when given."""
    auth = (username, password or "") if username else None
    return elasticsearch.AsyncElasticsearch(
        list(urls),
        basic_auth=auth,
        request_timeout=request_timeout_seconds,
        max_retries=0,
        retry_on_timeout=False,
    )


def is_transient_status(status: int) -> bool:
    return status >= 500 or status in TRANSIENT_STATUSES


def describe_item_error(error: Any) -> str:
    """``type: reason (caused by type: reason)`` from a bulk item's ``error`` object."""
    if not isinstance(error, dict):
        return str(error)
    text = f"{error.get('type')}: {error.get('reason')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason") != error.get("reason"):
        text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    return text


class BulkWriter:
    """Sends documents with bulk ``index`` requests and says what became of each one.

    Indexing is idempotent: each document has its id, so sending one again after a timeout
    (when Elasticsearch may or may not have applied it) overwrites it with itself.
    """

    def __init__(
        self,
        client: elasticsearch.AsyncElasticsearch,
        *,
        initial_backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 8.0,
        metrics: SinkMetrics | None = None,
    ) -> None:
        self._client = client
        self._initial_backoff_seconds = initial_backoff_seconds
        self._max_backoff_seconds = max_backoff_seconds
        self._metrics = metrics or SinkMetrics.create()

    async def write(self, documents: Sequence[Document], *, deadline: float) -> list[str | None]:
        """Index ``documents``; return, in order, ``None`` for each indexed one and the reason
        for each one refused for good.

        ``deadline`` is on the ``time.monotonic`` clock. Raises ``ElasticsearchUnavailableError``
        when transient failures last past it (some documents may be indexed by then), and
        ``ElasticsearchRequestError`` at once for a request Elasticsearch refuses as a whole.
        """
        outcomes: list[str | None] = [None] * len(documents)
        pending = list(range(len(documents)))
        backoff_seconds = self._initial_backoff_seconds
        while True:
            # Send what is left; keep what failed transiently for the next round.
            try:
                pending = await self._send_round(documents, pending=pending, outcomes=outcomes)
                problem = f"{len(pending)} documents failed transiently"
            except ElasticsearchUnavailableError as exc:
                problem = str(exc)
            if not pending:
                return outcomes

            # Wait before the next round, unless that would pass the deadline.
            self._metrics.bulk_requests.labels("retry").inc()
            remaining_seconds = deadline - time.monotonic()
            if remaining_seconds <= backoff_seconds:
                raise ElasticsearchUnavailableError(
                    f"{problem}; gave up on {len(pending)} documents at the deadline"
                )
            logger.warning(
                "Bulk request failed (%s); retrying %d documents in %.1f s.",
                problem,
                len(pending),
                backoff_seconds,
            )
            await asyncio.sleep(backoff_seconds)
            backoff_seconds = min(backoff_seconds * 2, self._max_backoff_seconds)

    async def _send_round(
        self, documents: Sequence[Document], *, pending: list[int], outcomes: list[str | None]
    ) -> list[int]:
        """One bulk request for the ``pending`` documents; fills ``outcomes`` and returns the
        positions that failed transiently."""
        items = await self._bulk([documents[i] for i in pending])
        if items is None:
            return []
        retry: list[int] = []
        for position, item in zip(pending, items, strict=True):
            result = next(iter(item.values()))
            status = int(result.get("status", 500))
            if status < 300:
                continue
            if is_transient_status(status):
                retry.append(position)
                continue
            outcomes[position] = describe_item_error(result.get("error"))
            self._count_rejection(documents[position], result.get("error"))
        return retry

    async def _bulk(self, documents: Sequence[Document]) -> list[dict[str, Any]] | None:
        """Send one bulk request; ``None`` when every item succeeded."""
        operations: list[bytes] = []
        for document in documents:
            operations.append(_action_line(document))
            operations.append(document.source)
        started = time.monotonic()
        try:
            response = await self._client.bulk(
                operations=operations,  # type: ignore[arg-type]  # pre-serialized NDJSON lines
                filter_path=RESPONSE_FILTER,
            )
        except elasticsearch.ApiError as exc:
            self._metrics.elasticsearch_up.set(1 if exc.status_code < 500 else 0)
            if is_transient_status(exc.status_code):
                raise ElasticsearchUnavailableError(f"HTTP {exc.status_code}: {exc}") from exc
            raise ElasticsearchRequestError(f"HTTP {exc.status_code}: {exc}") from exc
        except elastic_transport.TransportError as exc:
            self._metrics.elasticsearch_up.set(0)
            raise ElasticsearchUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._metrics.bulk_seconds.observe(time.monotonic() - started)
        self._metrics.elasticsearch_up.set(1)
        self._metrics.bulk_requests.labels("ok").inc()
        self._metrics.bulk_documents.observe(len(documents))
        return response.body["items"] if response.body.get("errors") else None

    def _count_rejection(self, document: Document, error: Any) -> None:
        error_type = error.get("type", "unknown") if isinstance(error, dict) else "unknown"
        self._metrics.rejected_documents.labels(document.index, error_type).inc()


async def ensure_index(
    client: elasticsearch.AsyncElasticsearch, *, name: str, template: dict[str, Any]
) -> None:
    """Put the index template, then create the index if it does not exist yet.

    Idempotent: run at every start-up. An index created before the template keeps its mapping
    (Elasticsearch applies templates at creation only); that is logged, not changed.
    """
    try:
        await client.indices.put_index_template(name=templates.template_name(name), body=template)
        await client.indices.create(index=name)
        logger.info("Created index %s from its template.", name)
    except elasticsearch.BadRequestError as exc:
        if exc.error != "resource_already_exists_exception":
            raise ElasticsearchRequestError(f"index setup for {name} refused: {exc}") from exc
        logger.info("Index %s exists; its template is up to date for new indexes.", name)
    except elasticsearch.ApiError as exc:
        if is_transient_status(exc.status_code):
            raise ElasticsearchUnavailableError(f"index setup for {name}: {exc}") from exc
        raise ElasticsearchRequestError(f"index setup for {name} refused: {exc}") from exc
    except elastic_transport.TransportError as exc:
        raise ElasticsearchUnavailableError(f"index setup for {name}: {exc}") from exc


def _action_line(document: Document) -> bytes:
    # Index names and ids are ours (settings, UUIDs, hex digests): no escaping needed.
    return b'{"index":{"_index":"%s","_id":"%s"}}' % (
        document.index.encode(),
        document.id.encode(),
    )
