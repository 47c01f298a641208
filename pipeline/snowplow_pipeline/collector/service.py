"""Running the collector: listen, serve until cancelled, drain on the way out.

Shutdown is graceful: cancelling ``serve`` stops accepting connections and gives requests in
flight up to ``shutdown_timeout_seconds`` to finish, so a tracker whose event was being
published still gets its answer (and a 2xx only if the publish succeeded).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from snowplow_pipeline import topics
from snowplow_pipeline.collector.app import build_app
from snowplow_pipeline.collector.settings import CollectorSettings

logger = logging.getLogger(__name__)


async def serve(
    settings: CollectorSettings, publisher: topics.Publisher, *, app: web.Application | None = None
) -> None:
    """Serve ``app`` (default: a collector app for ``publisher``) until cancelled."""
    runner = await start(
        settings=settings, app=app or build_app(settings=settings, publisher=publisher)
    )
    try:
        await asyncio.Event().wait()
    finally:
        logger.info(
            "Collector stopping; draining requests for up to %.0f s.",
            settings.shutdown_timeout_seconds,
        )
        await runner.cleanup()


MAX_REQUEST_LINE_BYTES = 20_480
MAX_HEADERS_BYTES = 40_960


async def start(*, settings: CollectorSettings, app: web.Application) -> web.AppRunner:
    """Listen on ``settings.host``/``settings.port``; the caller owns ``runner.cleanup()``.

    ``runner.addresses`` gives the bound address, useful with port 0.
    """
    runner = web.AppRunner(
        app,
        shutdown_timeout=settings.shutdown_timeout_seconds,
        access_log=None,
        # aiohttp's 8 KiB defaults would answer 400 to a GET carrying a large entity (cx);
        # these are upstream collector's limits for the request line and the headers.
        max_line_size=MAX_REQUEST_LINE_BYTES,
        max_field_size=MAX_HEADERS_BYTES,
    )
    await runner.setup()
    site = web.TCPSite(runner, host=settings.host, port=settings.port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    logger.info("Collector listening on %s.", ", ".join(map(str, runner.addresses)))
    return runner
