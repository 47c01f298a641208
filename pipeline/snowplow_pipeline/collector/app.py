"""The collector's aiohttp application: the route table and the small service routes.

``build_app`` is what every entry point calls: the collector service on its own, and the local
Mini, which adds its own routes (``/micro/...``, a page at ``/``). Those can be passed as
``extra_routes`` or added to the returned app (``add_routes``, ``add_subapp``) before it starts.
Either way they are not shadowed by the catch-all ``/{vendor}/{version}``: aiohttp resolves a
path by its longest registered prefix first, so ``/micro/all`` finds ``/micro/...`` before the
two-segment tracking route. CORS preflight (``OPTIONS``) is answered on every path that has no
``OPTIONS`` route of its own, the Mini's routes included, so browsers can call them too (a
sub-app answers for its own paths).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import prometheus_client
import yarl
from aiohttp import web

from snowplow_pipeline import topics
from snowplow_pipeline.collector import responses
from snowplow_pipeline.collector.metrics import CollectorMetrics
from snowplow_pipeline.collector.settings import CollectorSettings
from snowplow_pipeline.collector.tracking import TrackingHandlers

if TYPE_CHECKING:
    from aiohttp.web_urldispatcher import _InfoDict

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
    app = web.Application()
    app[SETTINGS] = settings
    app[METRICS] = metrics
    # Counted as each answer is prepared (errors and 404s included) rather than in a
    # middleware: two middlewares cost a pixel request about a quarter of its time.
    app.on_response_prepare.append(_counter(metrics))
    tracking = TrackingHandlers(settings=settings, publisher=publisher, metrics=metrics)
    service = _ServiceHandlers(settings=settings, publisher=publisher, metrics=metrics)
    app.router.add_routes(extra_routes)
    app.router.add_routes(_routes(settings=settings, tracking=tracking, service=service))
    app.router.register_resource(_PreflightResource(service.preflight))
    return app


def _routes(
    *, settings: CollectorSettings, tracking: TrackingHandlers, service: _ServiceHandlers
) -> list[web.RouteDef]:
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

    async def preflight(self, request: web.Request) -> web.Response:
        return responses.preflight(
            headers=request.headers, max_age_seconds=self._settings.cors.max_age_seconds
        )


def _counter(metrics: CollectorMetrics) -> Callable[..., Awaitable[None]]:
    async def count_response(request: web.Request, response: web.StreamResponse) -> None:
        metrics.count_request(request.method, _route_label(request), response.status)

    return count_response


def _route_label(request: web.Request) -> str:
    # A request that matched no route is labelled as such, never with its (unbounded) path.
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


class _PreflightResource(web.AbstractResource):
    """Takes ``OPTIONS`` on any path that no route before it took, and no other method.

    It is indexed at ``/``, which aiohttp tries last for every path, so it only sees what the
    app's own routes left. For any other method it matches nothing and allows nothing, so an
    unknown path still gets 404, not the 405 that an ``OPTIONS`` route on ``/{tail:.*}`` would
    cause.
    """

    def __init__(self, handler: _Handler) -> None:
        super().__init__(name=None)
        self._route = web.ResourceRoute("OPTIONS", handler, self)

    @property
    def canonical(self) -> str:
        return "/{any path}"

    def url_for(self, **kwargs: str) -> yarl.URL:
        raise RuntimeError("the preflight resource has no URL of its own")

    async def resolve(
        self, request: web.Request
    ) -> tuple[web.UrlMappingMatchInfo | None, set[str]]:
        if request.method != "OPTIONS":
            return None, set()
        return web.UrlMappingMatchInfo({}, self._route), {"OPTIONS"}

    def add_prefix(self, prefix: str) -> None:
        raise RuntimeError("the preflight resource belongs at the root of the collector app")

    def get_info(self) -> _InfoDict:
        return {}

    def raw_match(self, path: str) -> bool:
        return False

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[web.AbstractRoute]:
        return iter([self._route])
