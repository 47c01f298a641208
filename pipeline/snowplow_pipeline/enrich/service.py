"""Enrich as a process: collector payloads from nsqd in, enriched events and bad rows out.

Each ``RawEvents`` message is one collector payload. ``EnrichHandler`` enriches it, publishes
the enriched TSV lines and the bad rows, and only then returns, so that the consumer finishes
the message (``FIN``) only once its outputs are on nsqd. A publish failure raises: the consumer
requeues the payload and pauses while failures go on, and the payload is enriched again later
(its outputs may then be published twice: delivery is at least once).

Bad input never blocks the channel: ``Enricher.process`` turns every malformed payload into bad
rows, an output too large for one NSQ message becomes a ``size_violation`` bad row, and a
payload whose processing keeps failing unexpectedly (a defect) becomes a ``generic_error`` bad
row after ``max_attempts_on_error`` tries.

``/health`` answers 200 while enrich is subscribed to nsqd and nsqd takes publishes, else 503;
``/metrics`` serves Prometheus counters of events, failures and processing time.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
import hashlib
import logging
import signal
import time
from collections.abc import Callable

import prometheus_client
from aiohttp import web

from snowplow_pipeline import badrows, nsq, topics
from snowplow_pipeline.enrich import enrichments, processing
from snowplow_pipeline.enrich.settings import EnrichSettings
from snowplow_pipeline.iglu import resolving

logger = logging.getLogger(__name__)

COMPONENT = "enrich"
_REMEMBERED_DEFECTS = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class EnrichMetrics:
    registry: prometheus_client.CollectorRegistry
    events: prometheus_client.Counter
    failures: prometheus_client.Counter
    seconds: prometheus_client.Histogram

    @classmethod
    def create(cls) -> EnrichMetrics:
        registry = prometheus_client.CollectorRegistry()
        return cls(
            registry=registry,
            events=prometheus_client.Counter(
                "enrich_events",
                "Events published, by outcome: good (enriched) or bad (bad rows).",
                ["outcome"],
                registry=registry,
            ),
            failures=prometheus_client.Counter(
                "enrich_failures",
                "Payloads requeued, by reason: publish (nsqd refused) or error (a defect).",
                ["reason"],
                registry=registry,
            ),
            seconds=prometheus_client.Histogram(
                "enrich_payload_seconds",
                "Time from taking a collector payload to having published its outputs.",
                registry=registry,
            ),
        )


class EnrichHandler:
    """The ``RawEvents`` handler: enrich one payload, publish its outputs, then return."""

    def __init__(
        self,
        *,
        enricher: processing.Enricher,
        publisher: topics.Publisher,
        settings: EnrichSettings,
        metrics: EnrichMetrics,
    ) -> None:
        self.enricher = enricher
        self.publisher = publisher
        self.settings = settings
        self.metrics = metrics
        self._errors: collections.OrderedDict[bytes, int] = collections.OrderedDict()

    async def __call__(self, message: bytes) -> None:
        started = time.perf_counter()
        outcome = await self._process(message)
        good, bad = self._fit_messages(outcome)
        try:
            await self._publish(self.settings.nsq.enriched_topic, good)
            await self._publish(self.settings.nsq.bad_topic, bad)
        except topics.PublishError:
            self.metrics.failures.labels("publish").inc()
            raise
        self.metrics.events.labels("good").inc(len(good))
        self.metrics.events.labels("bad").inc(len(bad))
        self.metrics.seconds.observe(time.perf_counter() - started)

    async def _process(self, message: bytes) -> processing.Outcome:
        """Enrich; a defect raises (to retry) until it has failed ``max_attempts_on_error``."""
        try:
            return await self.enricher.process(message)
        except Exception as exc:
            attempts = self._count_error(message)
            if attempts < self.settings.max_attempts_on_error:
                self.metrics.failures.labels("error").inc()
                logger.warning(
                    "Enriching a payload failed unexpectedly (attempt %d of %d); retrying it.",
                    attempts,
                    self.settings.max_attempts_on_error,
                    exc_info=True,
                )
                raise
            logger.exception(
                "Enriching a payload failed %d times; it becomes a generic_error bad row.",
                attempts,
            )
            row = badrows.generic_error(
                component=COMPONENT,
                errors=[f"{type(exc).__name__}: {exc}"],
                payload=base64.b64encode(message).decode(),
            )
            return processing.Outcome(bad=[row])

    def _count_error(self, message: bytes) -> int:
        # Remembered by content: nsqd redelivers the same bytes. Bounded, oldest first out.
        key = hashlib.sha256(message).digest()
        attempts = self._errors.pop(key, 0) + 1
        self._errors[key] = attempts
        while len(self._errors) > _REMEMBERED_DEFECTS:
            self._errors.popitem(last=False)
        return attempts

    def _fit_messages(self, outcome: processing.Outcome) -> tuple[list[bytes], list[bytes]]:
        """The outputs as messages; one too large for NSQ becomes a size_violation bad row."""
        limit = self.settings.nsq.max_message_bytes
        good: list[bytes] = []
        bad: list[bytes] = []
        for line in map(str.encode, outcome.good):
            if len(line) <= limit:
                good.append(line)
            else:
                bad.append(_too_large(line, limit=limit, what="event"))
        for row in map(badrows.serialize, outcome.bad):
            bad.append(row if len(row) <= limit else _too_large(row, limit=limit, what="bad row"))
        return good, bad

    async def _publish(self, topic: str, messages: list[bytes]) -> None:
        if messages:
            await self.publisher.publish(topic, messages)


def _too_large(message: bytes, *, limit: int, what: str) -> bytes:
    row = badrows.size_violation(
        component=COMPONENT,
        maximum_allowed_bytes=limit,
        actual_bytes=len(message),
        expectation=f"an enriched {what} fits in one NSQ message",
        payload=message.decode(errors="replace"),
    )
    return badrows.serialize(row)


def build_resolver(settings: EnrichSettings) -> resolving.Resolver:
    if settings.iglu_resolver is not None:
        return resolving.Resolver.from_file(settings.iglu_resolver)
    return resolving.Resolver.default()


def build_consumer(settings: EnrichSettings) -> nsq.NsqConsumer:
    options = nsq.ConsumerOptions(
        msg_timeout_seconds=settings.nsq.msg_timeout_seconds,
        drain_timeout_seconds=settings.shutdown_timeout_seconds,
    )
    return nsq.NsqConsumer(
        nsqd_tcp_addresses=settings.nsq.nsqd_tcp_addresses,
        lookupd_http_addresses=settings.nsq.lookupd_http_addresses,
        options=options,
        client_id=f"enrich-{settings.nsq.channel}",
    )


def build_app(
    *, consumer: nsq.NsqConsumer, publisher: nsq.NsqPublisher, metrics: EnrichMetrics
) -> web.Application:
    """``/health`` (subscribed and able to publish) and ``/metrics``."""

    async def health(request: web.Request) -> web.Response:
        if not consumer.is_connected():
            return web.Response(status=503, text="not subscribed to any nsqd\n")
        if not await publisher.is_healthy():
            return web.Response(status=503, text=f"nsqd {publisher.base_url} does not answer\n")
        return web.Response(text="OK\n")

    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(
            body=prometheus_client.generate_latest(metrics.registry),
            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST},
        )

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_page)
    return app


async def run(settings: EnrichSettings) -> None:
    """Enrich until SIGTERM or SIGINT, then finish the payloads in flight and stop.

    Raises ``EnrichmentConfigError`` or ``ResolverConfigError`` before connecting to anything
    when the enrichment configs or the resolver config are wrong.
    """
    metrics = EnrichMetrics.create()
    consumer = build_consumer(settings)
    async with contextlib.AsyncExitStack() as stack:
        # Enrichment configs first: their problems stop start-up before anything is opened.
        loaded = enrichments.load_enrichments(settings.enrichments) if settings.enrichments else []
        stack.callback(enrichments.close_enrichments, loaded)
        resolver = build_resolver(settings)
        stack.push_async_callback(resolver.close)
        publisher = settings.nsq.build_publisher()
        stack.push_async_callback(publisher.close)
        app = build_app(consumer=consumer, publisher=publisher, metrics=metrics)
        runner = await _serve_http(settings, app)
        stack.push_async_callback(runner.cleanup)

        # Signals stop the consumer, which drains; consume then returns and the stack unwinds.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, _stopper(consumer, signum))
        handler = EnrichHandler(
            enricher=processing.Enricher(resolver=resolver, enrichments=loaded),
            publisher=publisher,
            settings=settings,
            metrics=metrics,
        )
        logger.info(
            "Enrich consuming %s/%s with %d enrichments, publishing to %s and %s.",
            settings.nsq.input_topic,
            settings.nsq.channel,
            len(loaded),
            settings.nsq.enriched_topic,
            settings.nsq.bad_topic,
        )
        await consumer.consume(
            settings.nsq.input_topic,
            settings.nsq.channel,
            handler,
            max_in_flight=settings.nsq.max_in_flight,
        )
    logger.info("Enrich stopped.")


def _stopper(consumer: nsq.NsqConsumer, signum: int) -> Callable[[], None]:
    def stop() -> None:
        logger.info("Received %s; finishing the payloads in flight.", signal.Signals(signum).name)
        consumer.stop()

    return stop


async def _serve_http(settings: EnrichSettings, app: web.Application) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host=settings.host, port=settings.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    logger.info("Enrich health and metrics on %s.", ", ".join(map(str, runner.addresses)))
    return runner
