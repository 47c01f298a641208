"""Every collector endpoint answers with upstream's status, headers and body."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from snowplow_pipeline.collector import responses

from .conftest import MakeClient, RefusingPublisher, Sink

TP2 = "/com.snowplowanalytics.snowplow/tp2"


def assert_is_pixel(headers: dict[str, str] | object, body: bytes) -> None:
    assert headers["Content-Type"] == "image/gif"  # type: ignore[index]
    assert headers["Cache-Control"] == "no-cache, no-store, must-revalidate"  # type: ignore[index]
    assert body == responses.PIXEL
    assert body[:6] == b"GIF89a"
    assert body[6:10] == b"\x01\x00\x01\x00"  # 1 x 1


@pytest.mark.parametrize("path", ["/i", "/ice.png", TP2, "/com.acme/v1"])
async def test_get_tracking_request_is_answered_with_a_transparent_pixel(
    client: TestClient, sink: Sink, path: str
) -> None:
    response = await client.get(f"{path}?e=pv&aid=shop")

    assert response.status == 200
    assert_is_pixel(response.headers, await response.read())
    [payload] = await sink.payloads()
    assert (payload.path, payload.querystring) == (path, "e=pv&aid=shop")


async def test_head_on_pixel_is_answered_without_body_and_stored(
    client: TestClient, sink: Sink
) -> None:
    response = await client.head("/i?e=pv")

    assert response.status == 200
    assert response.headers["Content-Type"] == "image/gif"
    assert await response.read() == b""
    [payload] = await sink.payloads()
    assert payload.querystring == "e=pv"


@pytest.mark.parametrize(
    "path", [TP2, "/com.snowplowanalytics.iglu/v1", "/com.acme/v1"], ids=["tp2", "iglu", "webhook"]
)
async def test_post_is_answered_ok_in_plain_text(client: TestClient, sink: Sink, path: str) -> None:
    response = await client.post(
        path, data=b'{"a":1}', headers={"Content-Type": "application/json"}
    )

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await response.text() == "ok"
    [payload] = await sink.payloads()
    assert (payload.path, payload.body) == (path, '{"a":1}')


async def test_tracking_response_allows_the_calling_origin_with_credentials(
    client: TestClient,
) -> None:
    response = await client.get("/i", headers={"Origin": "https://shop.example.com"})

    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


async def test_tracking_response_without_origin_allows_any_origin(client: TestClient) -> None:
    response = await client.post(TP2, data=b"{}")

    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.parametrize("path", ["/i", TP2, "/anything/at/all", "/"])
async def test_preflight_on_any_path_echoes_origin_and_allows_sp_anonymous(
    client: TestClient, sink: Sink, path: str
) -> None:
    response = await client.options(path, headers={"Origin": "https://shop.example.com"})

    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, SP-Anonymous"
    assert response.headers["Access-Control-Max-Age"] == "3600"
    assert await sink.payloads() == []


async def test_preflight_without_origin_allows_any_and_uses_configured_max_age(
    make_client: MakeClient,
) -> None:
    client = await make_client(cors={"max_age_seconds": 120})

    response = await client.options(TP2)

    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Max-Age"] == "120"


async def test_health_answers_ok(client: TestClient) -> None:
    response = await client.get("/health")

    assert response.status == 200
    assert await response.text() == "ok"


async def test_sink_health_answers_ok_when_publisher_is_healthy(client: TestClient) -> None:
    response = await client.get("/sink-health")

    assert response.status == 200
    assert await response.text() == "ok"


async def test_sink_health_answers_503_when_publisher_is_unhealthy(
    make_client: MakeClient,
) -> None:
    client = await make_client(publisher=RefusingPublisher())

    response = await client.get("/sink-health")

    assert response.status == 503
    assert await response.text() == "the sink is not healthy\n"


async def test_robots_txt_disallows_every_crawler(client: TestClient) -> None:
    response = await client.get("/robots.txt")

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await response.text() == (
        "User-agent: *\nDisallow: /\n\n"
        "User-agent: Googlebot\nDisallow: /\n\n"
        "User-agent: AdsBot-Google\nDisallow: /\n"
    )


async def test_crossdomain_xml_is_not_served_by_default(client: TestClient, sink: Sink) -> None:
    response = await client.get("/crossdomain.xml")

    assert response.status == 404
    assert await sink.payloads() == []


async def test_crossdomain_xml_lists_configured_domains_when_enabled(
    make_client: MakeClient,
) -> None:
    client = await make_client(
        crossdomain={"enabled": True, "domains": ["*.acme.com", "a&b.org"], "secure": False}
    )

    response = await client.get("/crossdomain.xml")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    assert await response.text() == (
        '<?xml version="1.0"?>\n'
        "<cross-domain-policy>\n"
        '  <allow-access-from domain="*.acme.com" secure="false" />\n'
        '  <allow-access-from domain="a&amp;b.org" secure="false" />\n'
        "</cross-domain-policy>\n"
    )


async def test_post_to_pixel_path_is_refused_and_not_stored(client: TestClient, sink: Sink) -> None:
    response = await client.post("/i", data=b"e=pv")

    assert response.status == 405
    assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD"}
    assert await sink.payloads() == []


@pytest.mark.parametrize("path", ["/", "/one", "/a/b/c"])
async def test_paths_that_are_not_vendor_and_version_are_not_found(
    client: TestClient, sink: Sink, path: str
) -> None:
    response = await client.get(path)

    assert response.status == 404
    assert await sink.payloads() == []


async def test_custom_path_is_stored_as_the_standard_path_it_maps_to(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(path_mappings={"/acme/track": TP2})

    response = await client.post("/acme/track", data=b'{"data":[]}')

    assert response.status == 200
    assert await response.text() == "ok"
    [payload] = await sink.payloads()
    assert payload.path == TP2


async def test_metrics_count_requests_by_route_template_and_published_messages(
    client: TestClient,
) -> None:
    await client.get("/i?e=pv")
    await client.post("/com.acme/v1", data=b"x")
    await client.post(TP2, data=b'{"data":[]}')
    await client.get("/a/b/c")

    response = await client.get("/metrics")

    text = await response.text()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert 'collector_requests_total{method="GET",route="/i",status="200"} 1.0' in text
    assert (
        'collector_requests_total{method="POST",route="/{vendor}/{version}",status="200"} 1.0'
        in text
    )
    assert 'collector_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert f'collector_requests_total{{method="POST",route="{TP2}",status="200"}} 1.0' in text
    assert 'collector_messages_total{topic="RawEvents"} 3.0' in text
    assert 'collector_publish_seconds_count{topic="RawEvents"} 3.0' in text


async def test_metrics_count_preflights_refusals_and_odd_methods_with_bounded_labels(
    client: TestClient,
) -> None:
    await client.options("/anything/at/all")
    await client.post("/i", data=b"e=pv")
    for method in ("PROPFIND", "MKCOL", "LOCK"):
        await client.request(method, "/i")

    text = await (await client.get("/metrics")).text()

    assert 'collector_requests_total{method="OPTIONS",route="unmatched",status="200"} 1.0' in text
    assert 'collector_requests_total{method="POST",route="unmatched",status="405"} 1.0' in text
    assert 'collector_requests_total{method="other",route="unmatched",status="405"} 3.0' in text
    assert "PROPFIND" not in text


async def test_unknown_methods_on_unknown_paths_are_still_not_found(client: TestClient) -> None:
    # The preflight route takes OPTIONS on any path and must not make other methods "allowed".
    for method in ("GET", "POST", "DELETE", "PROPFIND"):
        response = await client.request(method, "/a/b/c")

        assert response.status == 404, method


async def test_each_app_keeps_its_own_metrics(make_client: MakeClient) -> None:
    first = await make_client()
    second = await make_client()
    await first.get("/i")

    text = await (await second.get("/metrics")).text()

    assert 'route="/i"' not in text
