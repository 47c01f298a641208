"""Running a sink: set up the index, consume every topic of its kind, drain on the way out.

The transport is injected: ``consume`` is any callable with the ``topics`` consume contract
(``NsqConsumer.consume`` with its ``max_in_flight`` bound, or ``MemoryTopics.consume`` in
tests), and ``failures`` any ``topics.Publisher``. So the same code runs on nsqd and in
memory.

Start-up waits for Elasticsearch (the operator may start both at once): the index template is
put and the index created before the first message is consumed, so no document is ever
indexed with dynamic defaults. A template or index that Elasticsearch refuses as wrong stops
the process, since no message could be indexed correctly after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import elasticsearch
from aiohttp import web

from snowplow_pipeline import nsq, topics
from snowplow_pipeline.sink import batching, handling, indexing, templates
from snowplow_pipeline.sink.metrics import SinkMetrics
from snowplow_pipeline.sink.settings import SinkSettings

logger = logging.getLogger(__name__)

Consume = Callable[[str, str, topics.Handler], Coroutine[Any, Any, None]]

SETUP_RETRY_SECONDS = 1.0
MAX_SETUP_RETRY_SECONDS = 15.0


async def run(
    settings: SinkSettings,
    *,
    consume: Consume,
    failures: topics.Publisher,
    metrics: SinkMetrics | None = None,
    is_connected: Callable[[], bool] = lambda: True,
    stopping: asyncio.Event | None = None,
) -> None:
    """Serve ``/metrics`` and ``/health``, set up the index, then consume until ``consume``
    returns (the transport was stopped) or this is cancelled; in-flight batches are sent.

    ``/health`` answers 200 once the index is set up while ``is_connected()`` (the transport
    has a connection), else 503. Once ``stopping`` is set, batches are sent without waiting to
    fill, so that the transport's drain ends quickly.
    """
    metrics = metrics or SinkMetrics.create()
    health = Health(is_connected=is_connected)
    client = indexing.connect(
        urls=settings.elasticsearch.urls,
        username=settings.elasticsearch.username,
        password=_secret(settings),
        request_timeout_seconds=settings.elasticsearch.request_timeout_seconds,
    )
    runner = await start_http(settings=settings, metrics=metrics, health=health)
    batcher = build_batcher(settings=settings, client=client, metrics=metrics)
    flushing = asyncio.create_task(_flush_when(stopping, batcher=batcher))
    try:
        await prepare_index(client, settings=settings)
        health.is_index_ready = True
        handler = handling.MessageHandler(
            kind=settings.kind,
            index=settings.index_name,
            batcher=batcher,
            failures=failures,
            metrics=metrics,
            max_failure_bytes=settings.nsq.max_message_bytes,
        )
        await consume_all(consume=consume, handler=handler, settings=settings)
        await batcher.close()
    finally:
        # Cancelled (or failed): give up what is under way; the transport redelivers it.
        flushing.cancel()
        batcher.abandon()
        await client.close()
        await runner.cleanup()
        logger.info("Sink %s stopped.", settings.kind)


async def _flush_when(stopping: asyncio.Event | None, *, batcher: batching.Batcher) -> None:
    if stopping is not None:
        await stopping.wait()
        batcher.flush_promptly()


async def run_on_nsq(settings: SinkSettings) -> None:
    """Run the sink on nsqd until SIGTERM or SIGINT, then drain.

    The first signal stops consumption: handlers in flight get ``shutdown_timeout_seconds`` to
    have their batches acknowledged; whatever is unfinished then is cancelled, and nsqd
    redelivers it. A second signal cancels at once.
    """
    consumer = nsq.NsqConsumer(
        nsqd_tcp_addresses=settings.nsq.nsqd_tcp_addresses,
        lookupd_http_addresses=settings.nsq.lookupd_http_addresses,
        options=nsq.ConsumerOptions(
            msg_timeout_seconds=settings.nsq.msg_timeout_seconds,
            drain_timeout_seconds=settings.shutdown_timeout_seconds,
        ),
    )
    consume = functools.partial(consumer.consume, max_in_flight=settings.nsq.max_in_flight)
    publisher = nsq.NsqPublisher(
        http_address=settings.nsq.nsqd_http_address,
        max_message_bytes=settings.nsq.max_message_bytes,
    )
    stopping = asyncio.Event()
    async with publisher:
        task = asyncio.create_task(
            run(
                settings,
                consume=consume,
                failures=publisher,
                is_connected=consumer.is_connected,
                stopping=stopping,
            )
        )
        _stop_on_signals(
            task=task,
            consumer=consumer,
            stopping=stopping,
            timeout_seconds=settings.shutdown_timeout_seconds,
        )
        # The signal handlers cancel ``task``, not this coroutine: wait for it to end either way.
        await asyncio.wait([task])
        if not task.cancelled():
            task.result()


def _stop_on_signals(
    *,
    task: asyncio.Task[None],
    consumer: nsq.NsqConsumer,
    stopping: asyncio.Event,
    timeout_seconds: float,
) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if stopping.is_set():  # a second signal: stop now
            task.cancel()
            return
        logger.info("Stopping: draining messages in flight for up to %.0f s.", timeout_seconds)
        consumer.stop()
        stopping.set()
        loop.call_later(timeout_seconds + 5, task.cancel)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)


def build_batcher(
    *, settings: SinkSettings, client: elasticsearch.AsyncElasticsearch, metrics: SinkMetrics
) -> batching.Batcher:
    writer = indexing.BulkWriter(
        client,
        initial_backoff_seconds=settings.retry.initial_backoff_seconds,
        max_backoff_seconds=settings.retry.max_backoff_seconds,
        metrics=metrics,
    )
    return batching.Batcher(
        writer,
        max_documents=settings.batch.max_documents,
        max_bytes=settings.batch.max_bytes,
        flush_after_seconds=settings.batch.flush_after_seconds,
        max_concurrent_requests=settings.batch.max_concurrent_requests,
        give_up_after_seconds=settings.retry.give_up_after_seconds,
    )


def index_template(settings: SinkSettings) -> dict[str, Any]:
    build = templates.good_template if settings.kind == "good" else templates.bad_template
    return build(
        index=settings.index_name,
        shards=settings.index.shards,
        replicas=settings.index.replicas,
        total_fields_limit=settings.index.total_fields_limit,
        keyword_max_chars=settings.index.keyword_max_chars,
    )


async def prepare_index(
    client: elasticsearch.AsyncElasticsearch, *, settings: SinkSettings
) -> None:
    """Put the template and create the index, waiting for Elasticsearch as long as it takes.

    Raises ``indexing.ElasticsearchRequestError`` when Elasticsearch refuses the setup.
    """
    delay_seconds = SETUP_RETRY_SECONDS
    while True:
        try:
            await indexing.ensure_index(
                client, name=settings.index_name, template=index_template(settings)
            )
            return
        except indexing.ElasticsearchUnavailableError as exc:
            logger.warning(
                "Elasticsearch is not available for index setup (%s); retrying in %.0f s.",
                exc,
                delay_seconds,
            )
        await asyncio.sleep(delay_seconds)
        delay_seconds = min(delay_seconds * 2, MAX_SETUP_RETRY_SECONDS)


async def consume_all(
    *, consume: Consume, handler: handling.MessageHandler, settings: SinkSettings
) -> None:
    """Consume every topic of the sink's kind on its channel until all consumers return."""
    channel = settings.channel
    subscriptions = handling.TOPICS[settings.kind]
    logger.info(
        "Sink %s indexing %s into %s on channel %s.",
        settings.kind,
        ", ".join(subscriptions),
        settings.index_name,
        channel,
    )
    async with asyncio.TaskGroup() as group:
        for topic in subscriptions:
            group.create_task(consume(topic, channel, handler.for_topic(topic)))


@dataclasses.dataclass
class Health:
    """What ``/health`` reports: ready once the index is set up, while the transport is up."""

    is_connected: Callable[[], bool]
    is_index_ready: bool = False

    def describe(self) -> tuple[int, str]:
        if not self.is_index_ready:
            return 503, "setting up the index"
        if not self.is_connected():
            return 503, "not connected to the transport"
        return 200, "ok"


async def start_http(
    *, settings: SinkSettings, metrics: SinkMetrics, health: Health
) -> web.AppRunner:
    """Listen for ``/metrics`` and ``/health``; the caller owns ``runner.cleanup()``."""

    async def render_metrics(request: web.Request) -> web.Response:
        return metrics.render()

    async def render_health(request: web.Request) -> web.Response:
        status, state = health.describe()
        return web.json_response({"status": state, "kind": settings.kind}, status=status)

    app = web.Application()
    app.router.add_get("/metrics", render_metrics)
    app.router.add_get("/health", render_health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host=settings.host, port=settings.port).start()
    except BaseException:
        await runner.cleanup()
        raise
    logger.info("Sink metrics on %s.", ", ".join(map(str, runner.addresses)))
    return runner


def _secret(settings: SinkSettings) -> str | None:
    password = settings.elasticsearch.password
    return password.get_secret_value() if password is not None else None
