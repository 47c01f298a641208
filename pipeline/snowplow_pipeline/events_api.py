"""The events API of the local Mini, in the shape of Snowplow Micro's REST API.

Routes live under ``/micro`` so that harnesses written for Micro work unchanged:
``/micro/all``, ``/micro/good``, ``/micro/bad``, ``/micro/reset``,
``/micro/iglu/{vendor}/{name}/jsonschema/{version}``, plus ``/micro/ui``, a page listing the
events. Every answer carries permissive CORS headers, because browser-based test harnesses
call this API from their own origin.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from snowplow_pipeline import store as store_module
from snowplow_pipeline.iglu import resolving, schemakeys

PREFIX = "/micro"
MAX_LIMIT = 1_000_000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FilterError(ValueError):
    pass


class EventsApi:
    """The ``/micro`` routes over one store and one resolver."""

    def __init__(self, *, store: store_module.EventStore, resolver: resolving.Resolver) -> None:
        self.store = store
        self.resolver = resolver

    def routes(self) -> list[web.RouteDef]:
        """Route definitions to mount before the collector's catch-all routes."""
        handlers: dict[str, Handler] = {
            "/all": self.all,
            "/good": self.good,
            "/bad": self.bad,
            "/reset": self.reset,
            "/iglu/{vendor}/{name}/{format}/{version}": self.iglu,
            "/ui": self.ui,
        }
        routes = []
        for path, handler in handlers.items():
            # Reset changes state: only GET and POST, as Micro, never PUT or DELETE by accident.
            methods = ("GET", "POST", "OPTIONS") if path == "/reset" else ("*",)
            routes += [web.route(m, PREFIX + path, _with_cors(handler)) for m in methods]
        return routes

    async def all(self, request: web.Request) -> web.Response:
        return web.json_response(self.store.counts())

    async def good(self, request: web.Request) -> web.Response:
        allowed = {"event_type": str, "schema": str, "contexts": list, "limit": int}
        try:
            filters = await _filters(request, allowed=allowed)
        except FilterError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.store.good(**filters))

    async def bad(self, request: web.Request) -> web.Response:
        try:
            filters = await _filters(request, allowed={"vendor": str, "version": str, "limit": int})
        except FilterError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.store.bad(**filters))

    async def reset(self, request: web.Request) -> web.Response:
        self.store.reset()
        return web.json_response(self.store.counts())

    async def iglu(self, request: web.Request) -> web.Response:
        info = request.match_info
        uri = f"iglu:{info['vendor']}/{info['name']}/{info['format']}/{info['version']}"
        try:
            key = schemakeys.SchemaKey.parse(uri)
        except schemakeys.SchemaKeyError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        try:
            schema = await self.resolver.lookup(key)
        except resolving.ResolutionError as exc:
            return web.json_response(
                {"schemaKey": uri, "lookupHistory": exc.lookup_history}, status=404
            )
        return web.json_response(schema)

    async def ui(self, request: web.Request) -> web.Response:
        page = resources.files("snowplow_pipeline").joinpath("static/ui.html").read_text()
        return web.Response(text=page, content_type="text/html")


def _with_cors(handler: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        return response

    return handle


async def _filters(request: web.Request, *, allowed: dict[str, type]) -> dict[str, Any]:
    """Filters from a POST JSON body (Micro's way) or the query string, checked by type."""
    if request.method == "POST" and request.can_read_body:
        try:
            body = json.loads((await request.read()).decode("utf-8") or "{}")
        except json.JSONDecodeError as exc:
            raise FilterError(f"body: not JSON ({exc.msg})") from exc
        except (UnicodeDecodeError, RecursionError, ValueError) as exc:
            raise FilterError("body: expected a small JSON object in UTF-8") from exc
        if not isinstance(body, dict):
            raise FilterError("body: expected a JSON object of filters")
    else:
        body = {
            key: request.query.getall(key) if allowed.get(key) is list else value
            for key, value in request.query.items()
        }
    problems = []
    filters: dict[str, Any] = {}
    for key, value in body.items():
        expected = allowed.get(key)
        if expected is None:
            problems.append(f"{key}: unknown filter, expected one of {', '.join(allowed)}")
        elif expected is int:
            if isinstance(value, str) and value.isascii() and value.isdigit():
                value = int(value)
            if type(value) is not int or not 0 <= value <= MAX_LIMIT:
                problems.append(
                    f"{key}: got {str(value)[:40]!r}, expected an integer from 0 to {MAX_LIMIT}"
                )
            else:
                filters[key] = value
        elif expected is list and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            problems.append(f"{key}: expected a list of schema URIs")
        elif expected is str and not isinstance(value, str):
            problems.append(f"{key}: got {value!r}, expected a string")
        else:
            filters[key] = value
    if problems:
        raise FilterError("; ".join(problems))
    return filters
