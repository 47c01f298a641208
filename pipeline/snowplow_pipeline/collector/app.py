"""The collector's aiohttp application: the route table and the small service routes.

``build_app`` is what every entry point calls: the collector service on its own, and the local
Mini, which adds its own routes (``/micro/...``, a page at ``/``). Those can be passed as
``extra_routes`` or added to the returned app (``add_routes``, ``add_subapp``) before it starts.
Either way they are not shadowed by the catch-all ``/{vendor}/{version}``: aiohttp resolves a
path by its longest registered prefix first, so ``/micro/all`` finds ``/micro/...`` before the
two-segment tracking route. CORS preflight (``OPTIONS``) is answered on every path that has no
``OPTIONS`` route of its own, the Mini's routes included, so browsers can call them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import prometheus_client
from aiohttp import web

from snowplow_pipeline import topics
from snowplow_pipeline.collector import responses
from snowplow_pipeline.collector.metrics import CollectorMetrics
from snowplow_pipeline.collector.settings import CollectorSettings
from snowplow_pipeline.collector.tracking import TrackingHandlers

SETTINGS = web.AppKey("collector_settings", CollectorSettings)
METRICS = web.AppKey("collector_metrics", CollectorMetrics)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(
    *,
    settings: CollectorSettings,
    publisher: topics.Publisher,
    extra_routes: Iterable[web.AbstractRouteDef] = (),
    registry: prometheus_client.CollectorRegistry | None = None,
) -> web.Application:
    """The collector app publishing through ``publisher``; not started, still open to routes.

    ``registry`` receives the collector's metrics (a new one by default); ``/metrics`` serves it.
    """
    metrics = CollectorMetrics.create(registry)
    middlewares = [_count_requests(metrics), _answer_preflight(settings.cors.max_age_seconds)]
    app = web.Application(middlewares=middlewares)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app.router.add_routes(extra_routes)
    app.router.add_routes(_routes(settings=settings, publisher=publisher, metrics=metrics))
    return app


def _routes(
    *, settings: CollectorSettings, publisher: topics.Publisher, metrics: CollectorMetrics
) -> list[web.RouteDef]:
    tracking = TrackingHandlers(settings=settings, publisher=publisher, metrics=metrics)
    service = _ServiceHandlers(settings=settings, publisher=publisher, metrics=metrics)
    routes = [
        web.get("/health", service.health),
        web.get("/sink-health", service.sink_health),
        web.get("/robots.txt", service.robots_txt),
        web.get("/metrics", service.metrics),
        web.get("/i", tracking.pixel),
        web.get("/ice.png", tracking.pixel),
        web.get("/{vendor}/{version}", tracking.vendor),
        web.post("/{vendor}/{version}", tracking.vendor),
    ]
    if settings.crossdomain.enabled:
        routes.append(web.get("/crossdomain.xml", service.crossdomain_xml))
    return routes


class _ServiceHandlers:
    """Health, readiness, metrics, robots.txt, the cross-domain policy and CORS preflight."""

    def __init__(
        self,
        *,
        settings: CollectorSettings,
        publisher: topics.Publisher,
        metrics: CollectorMetrics,
    ) -> None:
        self._settings = settings
        self._publisher = publisher
        self._metrics = metrics

    async def health(self, request: web.Request) -> web.Response:
        """Liveness: the process answers HTTP."""
        return web.Response(text="ok", content_type="text/plain")

    async def sink_health(self, request: web.Request) -> web.Response:
        """Readiness: the publisher can take messages; 503 tells load balancers to wait."""
        if await self._publisher.is_healthy():
            return web.Response(text="ok", content_type="text/plain")
        return responses.problem(503, "the sink is not healthy")

    async def robots_txt(self, request: web.Request) -> web.Response:
        return responses.robots_txt()

    async def metrics(self, request: web.Request) -> web.Response:
        return self._metrics.render()

    async def crossdomain_xml(self, request: web.Request) -> web.Response:
        crossdomain = self._settings.crossdomain
        return responses.crossdomain_xml(domains=crossdomain.domains, secure=crossdomain.secure)


def _count_requests(metrics: CollectorMetrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def count_requests(request: web.Request, handler: _Handler) -> web.StreamResponse:
        status = "500"  # what aiohttp answers when the handler raises anything else
        try:
            response = await handler(request)
            status = str(response.status)
            return response
        except web.HTTPException as error:
            status = str(error.status)
            raise
        except asyncio.CancelledError:
            status = "cancelled"  # the client went away or the server is shutting down
            raise
        finally:
            metrics.requests.labels(request.method, _route_template(request), status).inc()

    return count_requests


def _answer_preflight(max_age_seconds: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    # A middleware rather than an OPTIONS route on every path: such a route would make every
    # path exist, turning the 404 of an unknown path into a 405.
    @web.middleware
    async def answer_preflight(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and request.match_info.http_exception is not None:
            return responses.preflight(headers=request.headers, max_age_seconds=max_age_seconds)
        return await handler(request)

    return answer_preflight


def _route_template(request: web.Request) -> str:
    # A request that matched no route is labelled as such, never with its (unbounded) path.
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"
