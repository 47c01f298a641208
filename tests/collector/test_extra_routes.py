"""Routes the local Mini adds (``/micro/...``, a page at ``/``) are not swallowed by the
collector's catch-all ``/{vendor}/{version}``, however they are added."""

from __future__ import annotations

from aiohttp import web

from snowplow_pipeline.collector import CollectorSettings, build_app

from .conftest import MakeClient, Sink


async def micro_all(request: web.Request) -> web.Response:
    return web.json_response({"total": 0, "good": 0, "bad": 0})


async def micro_reset(request: web.Request) -> web.Response:
    return web.Response(text="reset")


async def home(request: web.Request) -> web.Response:
    return web.Response(text="<h1>Mini</h1>", content_type="text/html")


async def test_extra_routes_answer_their_paths_and_nothing_is_stored(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(
        extra_routes=[
            web.get("/micro/all", micro_all),
            web.post("/micro/reset", micro_reset),
            web.get("/", home),
        ]
    )

    counts = await client.get("/micro/all")
    reset = await client.post("/micro/reset")
    page = await client.get("/")

    assert (counts.status, await counts.json()) == (200, {"total": 0, "good": 0, "bad": 0})
    assert (reset.status, await reset.text()) == (200, "reset")
    assert (page.status, await page.text()) == (200, "<h1>Mini</h1>")
    assert await sink.payloads() == []


async def test_subapp_added_after_build_receives_its_paths(
    make_client: MakeClient, sink: Sink
) -> None:
    micro = web.Application()
    micro.router.add_get("/all", micro_all)
    micro.router.add_post("/reset", micro_reset)
    app = build_app(settings=CollectorSettings(), publisher=sink.topics)
    app.add_subapp("/micro", micro)
    client = await make_client(app=app)

    counts = await client.get("/micro/all")
    reset = await client.post("/micro/reset")
    unknown = await client.get("/micro/nothing")

    assert (counts.status, await counts.json()) == (200, {"total": 0, "good": 0, "bad": 0})
    assert (reset.status, await reset.text()) == (200, "reset")
    assert unknown.status == 404
    assert await sink.payloads() == []


async def test_routes_added_after_build_win_over_the_catch_all(
    make_client: MakeClient, sink: Sink
) -> None:
    app = build_app(settings=CollectorSettings(), publisher=sink.topics)
    app.router.add_get("/micro/all", micro_all)
    client = await make_client(app=app)

    response = await client.get("/micro/all")
    tracked = await client.get("/com.acme/v1")

    assert response.status == 200
    assert await response.json() == {"total": 0, "good": 0, "bad": 0}
    assert tracked.headers["Content-Type"] == "image/gif"
    [payload] = await sink.payloads()
    assert payload.path == "/com.acme/v1"


async def test_preflight_is_answered_for_extra_routes_without_their_own(
    make_client: MakeClient,
) -> None:
    client = await make_client(extra_routes=[web.get("/micro/all", micro_all)])

    response = await client.options("/micro/all", headers={"Origin": "http://localhost:3000"})

    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, SP-Anonymous"


async def test_extra_route_with_its_own_options_handler_keeps_it(make_client: MakeClient) -> None:
    async def own_preflight(request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Access-Control-Allow-Methods": "GET"})

    client = await make_client(
        extra_routes=[web.get("/micro/all", micro_all), web.options("/micro/all", own_preflight)]
    )

    response = await client.options("/micro/all")

    assert response.status == 204
    assert response.headers["Access-Control-Allow-Methods"] == "GET"


async def test_extra_routes_are_counted_by_template_failures_included(
    make_client: MakeClient,
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug in an extra route")

    async def refusing(request: web.Request) -> web.Response:
        raise web.HTTPForbidden()

    client = await make_client(
        extra_routes=[
            web.get("/micro/all", micro_all),
            web.get("/micro/broken", broken),
            web.get("/micro/events/{id}", refusing),
        ]
    )

    await client.get("/micro/all")
    assert (await client.get("/micro/broken")).status == 500
    assert (await client.get("/micro/events/1")).status == 403
    assert (await client.get("/micro/events/2")).status == 403

    text = await (await client.get("/metrics")).text()
    assert 'collector_requests_total{method="GET",route="/micro/all",status="200"} 1.0' in text
    assert 'collector_requests_total{method="GET",route="/micro/broken",status="500"} 1.0' in text
    assert (
        'collector_requests_total{method="GET",route="/micro/events/{id}",status="403"} 2.0' in text
    )
