"""The browser tracker (``@snowplow/browser-tracker``) in headless Chromium, from another origin.

The test page is served from ``http://127.0.0.1:<A>``; the collector listens on 127.0.0.1 too,
and the page reaches it either as ``http://127.0.0.1:<B>`` (another origin of the same site:
a collector on the site's own domain, the setup Snowplow recommends) or as
``http://localhost:<B>`` (another site: a third-party collector). Either way the browser sends
a CORS preflight before each kind of POST, and reads the answers only if the collector allows
the page's origin with credentials. ``js/browser_tracker.js`` sends a page view and, once it
was answered, a structured event, so the second request can carry the ``sp`` cookie the first
answer set.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from aiohttp import web

from snowplow_pipeline import payloads

from . import layout
from .conftest import JS_DIR, RawEvents, RunningCollector, run_node_script
from .layout import TrackerPackages

pytestmark = [pytest.mark.tracker, pytest.mark.nsq]

TP2 = "/com.snowplowanalytics.snowplow/tp2"
WEB_PAGE_SCHEMA = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0"
BROWSER_TRACKER_VERSION = "js-4.10.1"


@dataclasses.dataclass
class Visit:
    """What the driver saw in the browser, and the page it visited."""

    page_origin: str
    page_url: str
    collector_origin: str
    answers: list[dict[str, Any]]
    cookies: list[dict[str, Any]]
    exchanges: list[dict[str, Any]]
    user_agent: str

    def exchanges_of(self, method: str) -> list[dict[str, Any]]:
        return [exchange for exchange in self.exchanges if exchange["method"] == method]


@pytest.fixture(autouse=True)
def chromium() -> pathlib.Path:
    """Debian's Chromium; missing, the test fails with the way to get it."""
    if not layout.CHROMIUM.is_file():
        pytest.fail(f"{layout.CHROMIUM} is missing; run `make provision`", pytrace=False)
    return layout.CHROMIUM


@pytest.fixture
async def page_origin(tracker_packages: TrackerPackages) -> AsyncIterator[str]:
    """A server for the test page and the tracker script, on 127.0.0.1, nothing else."""
    files = {
        "/": JS_DIR / "tracker_page.html",
        "/sp.js": tracker_packages.browser_tracker_script,
    }
    app = web.Application()
    for path, file in files.items():
        app.router.add_get(path, _serve(file))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host="127.0.0.1", port=0)
        await site.start()
        _, port = runner.addresses[0]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _serve(file: pathlib.Path) -> Any:
    async def handle(request: web.Request) -> web.FileResponse:
        return web.FileResponse(file)

    return handle


async def visit(
    *,
    page_origin: str,
    collector_origin: str,
    method: str,
    cookies: str,
    packages: TrackerPackages,
    profile_dir: pathlib.Path,
) -> Visit:
    page_url = f"{page_origin}/?{urlencode({'collector': collector_origin, 'method': method})}"
    result = await run_node_script(
        "browser_tracker.js",
        [str(layout.CHROMIUM), page_url, collector_origin, str(profile_dir), cookies],
        node_path=[packages.playwright_core.node_modules],
    )
    output = result.output
    return Visit(
        page_origin=page_origin,
        page_url=page_url,
        collector_origin=collector_origin,
        answers=output["answers"],
        cookies=output["cookies"],
        exchanges=output["exchanges"],
        user_agent=output["userAgent"],
    )


def sp_cookie(visit: Visit) -> dict[str, Any]:
    [cookie] = [cookie for cookie in visit.cookies if cookie["name"] == "sp"]
    return cookie


def cookie_pairs(header: str) -> dict[str, str]:
    """The name/value pairs of a Cookie header ("" when there was none)."""
    return dict(pair.split("=", 1) for pair in header.split("; ") if pair)


def assert_cors_allows_the_page(headers: dict[str, str], *, page_origin: str) -> None:
    assert headers["Access-Control-Allow-Origin"] == page_origin
    assert headers["Access-Control-Allow-Credentials"] == "true"


def assert_sent_by_browser(
    payload: payloads.CollectorPayload, *, visit: Visit, service: RunningCollector
) -> None:
    """Fields every request of the browser gets, whatever its method and cookie."""
    collector_host = visit.collector_origin.removeprefix("http://").rsplit(":", 1)[0]
    assert payload.schema == payloads.SCHEMA
    assert payload.ip_address == "127.0.0.1"
    assert payload.collector == service.settings.collector_name
    assert payload.encoding == "UTF-8"
    assert payload.user_agent == visit.user_agent
    assert "HeadlessChrome/" in visit.user_agent
    # The default referrer policy sends only the origin to another origin.
    assert payload.referer_uri == visit.page_origin + "/"
    assert payload.hostname == collector_host
    assert f"Origin: {visit.page_origin}" in payload.headers
    assert f"Host: {collector_host}:{service.port}" in payload.headers


def assert_page_view_then_structured_event(
    events: list[dict[str, Any]], *, visit: Visit, entities: list[list[dict[str, Any]]]
) -> None:
    """The two events of the visit, each with one web_page entity of the same page view."""
    page_view, structured = events
    assert (page_view["e"], page_view["url"], page_view["page"]) == ("pv", visit.page_url, "Basket")
    assert (structured["e"], structured["se_ca"], structured["se_ac"]) == ("se", "checkout", "pay")
    assert structured["url"] == visit.page_url
    for event in events:
        assert (event["aid"], event["p"], event["tv"], event["tna"]) == (
            "shop-web",
            "web",
            BROWSER_TRACKER_VERSION,
            "sp",
        )
    assert page_view["duid"] == structured["duid"]
    [[page_entity], [structured_entity]] = entities
    assert page_entity["schema"] == WEB_PAGE_SCHEMA
    assert str(uuid.UUID(page_entity["data"]["id"])) == page_entity["data"]["id"]
    assert structured_entity == page_entity


def decode_contexts(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The entities of an event: ``co`` as JSON (POST) or ``cx`` as base64url JSON (GET)."""
    if "co" in event:
        contexts = json.loads(event["co"])
    else:
        encoded = event["cx"]
        contexts = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert contexts["schema"] == "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0"
    return list(contexts["data"])


def events_of(stored: list[payloads.CollectorPayload]) -> list[dict[str, Any]]:
    """One event per payload, from a tp2 body or from the query string of a GET."""
    events = []
    for payload in stored:
        if payload.body is not None:
            [event] = json.loads(payload.body)["data"]
        else:
            query = parse_qs(payload.querystring or "")
            event = {name: values[0] for name, values in query.items()}
        events.append(event)
    return events


async def test_cross_site_post_gets_through_cors_and_keeps_the_sp_cookie(
    collector_service: RunningCollector,
    raw_events: RawEvents,
    page_origin: str,
    tracker_packages: TrackerPackages,
    tmp_path: pathlib.Path,
) -> None:
    collector_origin = f"http://localhost:{collector_service.port}"

    seen = await visit(
        page_origin=page_origin,
        collector_origin=collector_origin,
        method="post",
        cookies="allow-third-party",
        packages=tracker_packages,
        profile_dir=tmp_path / "profile",
    )

    # The browser let the tracker read both answers: the preflight allowed the page's origin
    # with credentials, and so did each POST's answer. The preflight was cached (Max-Age).
    assert seen.answers == [{"status": 200, "events": 1}] * 2
    [preflight] = seen.exchanges_of("OPTIONS")
    assert preflight["status"] == 200
    assert preflight["requestHeaders"]["Access-Control-Request-Method"] == "POST"
    assert_cors_allows_the_page(preflight["responseHeaders"], page_origin=page_origin)
    assert "Content-Type" in preflight["responseHeaders"]["Access-Control-Allow-Headers"]
    first, second = seen.exchanges_of("POST")
    for exchange in (first, second):
        assert exchange["status"] == 200
        assert_cors_allows_the_page(exchange["responseHeaders"], page_origin=page_origin)

    # The first answer set the cookie; the browser kept it and sent it with the second request.
    cookie = sp_cookie(seen)
    assert (cookie["domain"], cookie["secure"], cookie["sameSite"]) == ("localhost", True, "None")
    assert "Cookie" not in first["requestHeaders"]
    assert first["responseHeaders"]["Set-Cookie"].startswith(f"sp={cookie['value']}; ")
    assert first["blockedResponseCookies"] == []
    assert second["requestHeaders"]["Cookie"] == f"sp={cookie['value']}"

    # In RawEvents: both requests carry that id as network user id.
    stored = await raw_events.payloads(2)
    for payload in stored:
        assert_sent_by_browser(payload, visit=seen, service=collector_service)
        assert payload.path == TP2
        assert payload.content_type == "application/json; charset=utf-8"
        assert payload.network_user_id == cookie["value"]
    assert not any(header.startswith("Cookie:") for header in stored[0].headers)
    assert f"Cookie: sp={cookie['value']}" in stored[1].headers
    events = events_of(stored)
    assert_page_view_then_structured_event(
        events, visit=seen, entities=[decode_contexts(event) for event in events]
    )


@pytest.mark.parametrize("method", ["post", "get"])
async def test_same_site_collector_keeps_the_sp_cookie_with_default_browser_settings(
    method: str,
    collector_service: RunningCollector,
    raw_events: RawEvents,
    page_origin: str,
    tracker_packages: TrackerPackages,
    tmp_path: pathlib.Path,
) -> None:
    seen = await visit(
        page_origin=page_origin,
        collector_origin=collector_service.url,
        method=method,
        cookies="default",
        packages=tracker_packages,
        profile_dir=tmp_path / "profile",
    )

    assert seen.answers == [{"status": 200, "events": 1}] * 2
    # Only the POST's JSON content type needs a preflight; a GET is a simple request.
    assert len(seen.exchanges_of("OPTIONS")) == (1 if method == "post" else 0)
    first, second = seen.exchanges_of(method.upper())
    assert_cors_allows_the_page(second["responseHeaders"], page_origin=page_origin)
    cookie = sp_cookie(seen)
    assert (cookie["domain"], cookie["secure"], cookie["sameSite"]) == ("127.0.0.1", True, "None")
    # Cookies ignore ports: the collector also gets the tracker's own cookies of the page's host.
    assert "sp" not in cookie_pairs(first["requestHeaders"].get("Cookie", ""))
    sent_cookies = cookie_pairs(second["requestHeaders"]["Cookie"])
    assert sent_cookies["sp"] == cookie["value"]
    assert any(name.startswith("_sp_id.") for name in sent_cookies)

    stored = await raw_events.payloads(2)
    for payload in stored:
        assert_sent_by_browser(payload, visit=seen, service=collector_service)
        assert payload.network_user_id == cookie["value"]
    if method == "get":
        assert [payload.path for payload in stored] == ["/i", "/i"]
        assert [payload.body for payload in stored] == [None, None]
    assert f"Cookie: {second['requestHeaders']['Cookie']}" in stored[1].headers
    events = events_of(stored)
    assert_page_view_then_structured_event(
        events, visit=seen, entities=[decode_contexts(event) for event in events]
    )


async def test_cross_site_events_arrive_when_the_browser_blocks_third_party_cookies(
    collector_service: RunningCollector,
    raw_events: RawEvents,
    page_origin: str,
    tracker_packages: TrackerPackages,
    tmp_path: pathlib.Path,
) -> None:
    seen = await visit(
        page_origin=page_origin,
        collector_origin=f"http://localhost:{collector_service.port}",
        method="post",
        cookies="default",
        packages=tracker_packages,
        profile_dir=tmp_path / "profile",
    )

    # The browser drops the collector's cookie (a third-party cookie), so each request gets a
    # new network user id: a known limit of third-party collectors, not an error.
    assert seen.answers == [{"status": 200, "events": 1}] * 2
    assert seen.cookies == []
    first, second = seen.exchanges_of("POST")
    [blocked] = first["blockedResponseCookies"]
    assert (blocked["cookie"]["name"], blocked["blockedReasons"]) == ("sp", ["UserPreferences"])
    assert "Cookie" not in second["requestHeaders"]
    stored = await raw_events.payloads(2)
    assert stored[0].network_user_id == blocked["cookie"]["value"]
    assert stored[1].network_user_id != stored[0].network_user_id
    events = events_of(stored)
    assert_page_view_then_structured_event(
        events, visit=seen, entities=[decode_contexts(event) for event in events]
    )
