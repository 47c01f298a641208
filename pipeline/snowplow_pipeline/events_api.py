"""The events API of the local Mini, in the shape of Snowplow Micro's REST API.

Routes live under ``/micro`` so that harnesses written for Micro work unchanged:
``/micro/all``, ``/micro/good``, ``/micro/bad``, ``/micro/reset``,
``/micro/iglu/{vendor}/{name}/jsonschema/{version}``, plus ``/micro/ui``, a page listing the
events. Every answer carries permissive CORS headers, because browser-based test harnesses
call this API from their own origin.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from aiohttp import web

from snowplow_pipeline import store as store_module
from snowplow_pipeline.iglu import resolving, schemakeys

STORE_KEY = web.AppKey("store", store_module.EventStore)
RESOLVER_KEY = web.AppKey("resolver", resolving.Resolver)


def build_app(*, store: store_module.EventStore, resolver: resolving.Resolver) -> web.Application:
    """The ``/micro`` sub-application."""
    app = web.Application(middlewares=[_cors])
    app[STORE_KEY] = store
    app[RESOLVER_KEY] = resolver
    app.router.add_route("*", "/all", _all)
    app.router.add_route("*", "/good", _good)
    app.router.add_route("*", "/bad", _bad)
    app.router.add_route("*", "/reset", _reset)
    app.router.add_get("/iglu/{vendor}/{name}/{format}/{version}", _iglu)
    app.router.add_get("/ui", _ui)
    return app


class FilterError(ValueError):
    pass


@web.middleware
async def _cors(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204)
    else:
        response = await handler(request)
    response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    return response


async def _all(request: web.Request) -> web.Response:
    return web.json_response(request.app[STORE_KEY].counts())


async def _good(request: web.Request) -> web.Response:
    try:
        filters = await _filters(
            request, allowed={"event_type": str, "schema": str, "contexts": list, "limit": int}
        )
    except FilterError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(request.app[STORE_KEY].good(**filters))


async def _bad(request: web.Request) -> web.Response:
    try:
        filters = await _filters(request, allowed={"vendor": str, "version": str, "limit": int})
    except FilterError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(request.app[STORE_KEY].bad(**filters))


async def _reset(request: web.Request) -> web.Response:
    request.app[STORE_KEY].reset()
    return web.json_response(request.app[STORE_KEY].counts())


async def _iglu(request: web.Request) -> web.Response:
    info = request.match_info
    uri = f"iglu:{info['vendor']}/{info['name']}/{info['format']}/{info['version']}"
    try:
        key = schemakeys.SchemaKey.parse(uri)
    except schemakeys.SchemaKeyError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    try:
        schema = await request.app[RESOLVER_KEY].lookup(key)
    except resolving.ResolutionError as exc:
        return web.json_response(
            {"schemaKey": uri, "lookupHistory": exc.lookup_history}, status=404
        )
    return web.json_response(schema)


async def _ui(request: web.Request) -> web.Response:
    page = resources.files("snowplow_pipeline").joinpath("static/ui.html").read_text()
    return web.Response(text=page, content_type="text/html")


async def _filters(request: web.Request, *, allowed: dict[str, type]) -> dict[str, Any]:
    """Filters from a POST JSON body (Micro's way) or the query string, checked by type."""
    if request.method == "POST" and request.can_read_body:
        try:
            body = json.loads(await request.text() or "{}")
        except json.JSONDecodeError as exc:
            raise FilterError(f"body: not JSON ({exc.msg})") from exc
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
            try:
                filters[key] = int(value)
            except (TypeError, ValueError):
                problems.append(f"{key}: got {value!r}, expected an integer")
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
