"""The collector's aiohttp application: the route table and the small service routes.

``build_app`` is what every entry point calls: the collector service on its own, and the local
Mini, which adds its own routes (``/micro/...``, a page at ``/``). Those can be passed as
``extra_routes`` or added to the returned app (``add_routes``, ``add_subapp``) before it starts.
Either way they are not shadowed by the catch-all ``/{vendor}/{version}``: aiohttp resolves a
path by its longest registered prefix first, so ``/micro/all`` finds ``/micro/...`` before the
two-segment tracking route.

What no route takes goes to one last resource, tried after every other: it answers CORS
preflight (``OPTIONS``) on any path, the Mini's routes included, so browsers can call them too,
and answers anything else with the 404 or 405 aiohttp would have given. A sub-app answers for
its own paths.

Requests are counted (``collector_requests_total``) by the tracking handlers themselves, by a
thin wrapper around every other handler and by that last resource; not by a middleware or a
response signal, which on a pixel request cost about a quarter and a twentieth of the
collector's time. Routes passed as ``extra_routes`` are counted too; routes added to the app
later are not.
"""

from __future__ import annotations

import asyncio
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

TP2 = "/com.snowplowanalytics.snowplow/tp2"

UNMATCHED = "unmatched"
"""The route label of requests no route took: 404s, 405s and preflights."""

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
    tracking = TrackingHandlers(settings=settings, publisher=publisher, metrics=metrics)
    service = _ServiceHandlers(settings=settings, publisher=publisher, metrics=metrics)
    # The tracking routes count their own answers; every other route is wrapped to count.
    routes = [*extra_routes, *_service_routes(settings=settings, service=service)]
    app.router.add_routes([_counted(route, metrics=metrics) for route in routes])
    app.router.add_routes(_tracking_routes(tracking))
    app.router.register_resource(_Unmatched(preflight=service.preflight, metrics=metrics))
    return app


def _service_routes(
    *, settings: CollectorSettings, service: _ServiceHandlers
) -> list[web.RouteDef]:
    routes = [
        web.get("/health", service.health),
        web.get("/sink-health", service.sink_health),
        web.get("/robots.txt", service.robots_txt),
        web.get("/metrics", service.metrics),
    ]
    if settings.crossdomain.enabled:
        routes.append(web.get("/crossdomain.xml", service.crossdomain_xml))
    return routes


def _tracking_routes(tracking: TrackingHandlers) -> list[web.RouteDef]:
    return [
        web.get("/i", tracking.pixel),
        web.get("/ice.png", tracking.pixel),
        # tp2 is where nearly every tracker sends; a plain route is found by one dictionary
        # lookup, before aiohttp walks the path and matches the pattern below.
        web.get(TP2, tracking.vendor),
        web.post(TP2, tracking.vendor),
        web.get("/{vendor}/{version}", tracking.vendor),
        web.post("/{vendor}/{version}", tracking.vendor),
    ]


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


def _counted(route: web.AbstractRouteDef, *, metrics: CollectorMetrics) -> web.AbstractRouteDef:
    """``route`` with its handler counting each answer under the route's template."""
    if not isinstance(route, web.RouteDef):
        return route  # static files and other kinds: served, not counted
    handler = route.handler
    template = route.path

    async def counted(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as error:
            metrics.count_request(request.method, template, error.status)
            raise
        except asyncio.CancelledError:
            raise  # the client went away or the server is stopping: nothing was answered
        except Exception:
            metrics.count_request(request.method, template, 500)  # aiohttp answers 500
            raise
        metrics.count_request(request.method, template, response.status)
        return response

    return web.RouteDef(route.method, route.path, counted, route.kwargs)


class _Unmatched(web.AbstractResource):
    """What no route took: preflight on any path, else the 404 or 405 aiohttp would answer.

    It is indexed at ``/``, which aiohttp tries last for every path, so it only sees what the
    app's own routes left. A plain ``OPTIONS`` route on ``/{tail:.*}`` would not do: it would
    make every path exist and turn an unknown path's 404 into a 405.
    """

    def __init__(self, *, preflight: _Handler, metrics: CollectorMetrics) -> None:
        super().__init__(name=None)
        self._preflight = preflight
        self._metrics = metrics
        self._route = web.ResourceRoute("*", self._answer, self)

    @property
    def canonical(self) -> str:
        return "/{any path}"

    def url_for(self, **kwargs: str) -> yarl.URL:
        raise RuntimeError("the unmatched resource has no URL of its own")

    async def resolve(self, request: web.Request) -> tuple[web.UrlMappingMatchInfo, set[str]]:
        return web.UrlMappingMatchInfo({}, self._route), set()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            response = await self._preflight(request)
            self._metrics.count_request(request.method, UNMATCHED, response.status)
            return response
        # The methods other routes take on this path, as the router collected them before
        # reaching this resource (only on this error path, so its cost does not matter).
        allowed: set[str] = set()
        for resource in request.app.router.resources():
            if resource is not self:
                allowed |= (await resource.resolve(request))[1]
        error: web.HTTPException = (
            web.HTTPMethodNotAllowed(request.method, allowed) if allowed else web.HTTPNotFound()
        )
        self._metrics.count_request(request.method, UNMATCHED, error.status)
        raise error

    def add_prefix(self, prefix: str) -> None:
        raise RuntimeError("the unmatched resource belongs at the root of the collector app")

    def get_info(self) -> _InfoDict:
        return {}

    def raw_match(self, path: str) -> bool:
        return False

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[web.AbstractRoute]:
        return iter([self._route])
