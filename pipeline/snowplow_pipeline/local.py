"""The local Mini: collector, enrich and the event store in one process.

The components are wired exactly as in a cluster, only the transport differs: the collector
publishes collector payloads to the in-process ``RawEvents`` topic, enrich consumes them and
publishes enriched TSV lines and bad rows, and the store consumes those. Enrich acknowledges a
payload only after its outputs were published, as it does on nsqd.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import pydantic
import pydantic_settings
from aiohttp import web

from snowplow_pipeline import badrows, collector, events_api, topics
from snowplow_pipeline import store as store_module
from snowplow_pipeline.collector import settings as collector_settings
from snowplow_pipeline.enrich import enrichments as enrichment_configs
from snowplow_pipeline.enrich import processing
from snowplow_pipeline.enrich import service as enrich_service
from snowplow_pipeline.enrich import settings as enrich_settings
from snowplow_pipeline.iglu import resolving

logger = logging.getLogger(__name__)

# Enrich retries a payload it fails on (an internal defect) a few times a second apart, then
# makes it a generic_error bad row; shutdown waits that long for such payloads, no longer.
DRAIN_TIMEOUT_SECONDS = 10


class LocalSettings(pydantic_settings.BaseSettings):
    """Settings of ``snowplow-mini local``; flags override ``SNOWPLOW_MINI_*`` variables."""

    model_config = pydantic_settings.SettingsConfigDict(env_prefix="SNOWPLOW_MINI_")

    host: str = pydantic.Field("127.0.0.1", description="Address to listen on.")
    port: int = pydantic.Field(9090, ge=0, le=65535, description="Port for trackers and the API.")
    iglu_resolver: Path | None = pydantic.Field(
        None, description="A Snowplow resolver config (JSON); Iglu Central when not given."
    )
    schemas: Path | None = pydantic.Field(
        None, description="A local folder of schemas in Iglu layout, looked up first."
    )
    max_events: int = pydantic.Field(
        10_000, ge=1, description="Good and bad events kept each; the oldest go first."
    )
    output_tsv: bool = pydantic.Field(
        False, description="Also print each enriched event to stdout as a TSV line."
    )
    enrichments: Path | None = pydantic.Field(
        None, description="A folder of enrichment config files (upstream's JSON); none if unset."
    )


def build_resolver(settings: LocalSettings) -> resolving.Resolver:
    folders = [settings.schemas] if settings.schemas else []
    if settings.iglu_resolver:
        return resolving.Resolver.from_file(settings.iglu_resolver, extra_local_folders=folders)
    return resolving.Resolver.default(extra_local_folders=folders)


class LocalMini:
    """The running pipeline; ``start`` and ``stop`` bracket its life."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.topics = topics.MemoryTopics()
        # Enrichment configs first: their problems stop start-up before anything is opened.
        self.enrichments = (
            enrichment_configs.load_enrichments(settings.enrichments)
            if settings.enrichments
            else []
        )
        self.resolver = build_resolver(settings)
        self.store = store_module.EventStore(max_events=settings.max_events)
        self.enricher = processing.Enricher(resolver=self.resolver, enrichments=self.enrichments)
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        consumers: dict[tuple[str, str], topics.Handler] = {
            (topics.RAW_EVENTS, "enrich"): enrich_service.EnrichHandler(
                enricher=self.enricher,
                publisher=self.topics,
                settings=enrich_settings.EnrichSettings.model_construct(),
                metrics=enrich_service.EnrichMetrics.create(),
            ),
            (topics.ENRICHED_EVENTS, "store"): self._store_good,
            (topics.BAD_ENRICHED_EVENTS, "store"): self._store_bad,
            (topics.BAD_RAW_EVENTS, "store"): self._store_bad,
        }
        for (topic, channel), handler in consumers.items():
            task = asyncio.create_task(self.topics.consume(topic, channel, handler))
            self._tasks.append(task)
        settings = collector_settings.CollectorSettings(
            host=self.settings.host,
            port=self.settings.port,
            collector_name=f"snowplow-mini-local-{badrows.VERSION}",
        )
        app = collector.build_app(
            settings=settings,
            publisher=self.topics,
            extra_routes=events_api.EventsApi(store=self.store, resolver=self.resolver).routes(),
        )
        self._runner = await collector.start(settings=settings, app=app)
        logger.info(
            "Local Mini listening on http://%s:%d; events at /micro/ui.",
            self.settings.host,
            self.settings.port,
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        try:
            await asyncio.wait_for(self.topics.wait_idle(), timeout=DRAIN_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning(
                "Events still being retried after %d s are dropped at shutdown.",
                DRAIN_TIMEOUT_SECONDS,
            )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.resolver.close()
        enrichment_configs.close_enrichments(self.enrichments)

    async def _store_good(self, message: bytes) -> None:
        line = message.decode()
        self.store.add_good(line)
        if self.settings.output_tsv:
            print(line, flush=True)

    async def _store_bad(self, message: bytes) -> None:
        self.store.add_bad(badrows.parse(message))


async def run(settings: LocalSettings) -> None:
    """Serve until SIGINT or SIGTERM, then drain what was accepted and stop."""
    mini = LocalMini(settings)
    await mini.start()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
        logger.info("Stopping: finishing the events already accepted.")
    finally:
        await mini.stop()
