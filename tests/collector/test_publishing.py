"""The collector never answers 2xx for a request the publisher did not accept."""

from __future__ import annotations

from snowplow_pipeline import topics

from .conftest import MakeClient, RefusingPublisher

TP2 = "/com.snowplowanalytics.snowplow/tp2"


async def test_refused_post_is_answered_503_without_cookie(make_client: MakeClient) -> None:
    publisher = RefusingPublisher()
    client = await make_client(publisher=publisher)

    response = await client.post(TP2, data=b'{"data":[]}', headers={"Origin": "https://a.com"})

    assert response.status == 503
    assert await response.text() == "event not stored; retry later\n"
    assert "Set-Cookie" not in response.headers
    assert response.headers["Access-Control-Allow-Origin"] == "https://a.com"
    assert publisher.accepted == []


async def test_refused_pixel_request_is_answered_503_not_with_the_pixel(
    make_client: MakeClient,
) -> None:
    client = await make_client(publisher=RefusingPublisher())

    response = await client.get("/i?e=pv")

    assert response.status == 503
    assert response.headers["Content-Type"].startswith("text/plain")


async def test_refused_redirect_is_answered_503_not_302(make_client: MakeClient) -> None:
    client = await make_client(publisher=RefusingPublisher(), redirect={"enabled": True})

    response = await client.get("/r/tp2?u=https://acme.com/", allow_redirects=False)

    assert response.status == 503
    assert "Location" not in response.headers


async def test_refused_bad_row_is_answered_503_even_when_good_parts_were_accepted(
    make_client: MakeClient,
) -> None:
    publisher = RefusingPublisher(refused_topics=[topics.BAD_RAW_EVENTS])
    client = await make_client(publisher=publisher, max_message_bytes=600)
    body = '{"schema":"s","data":[{"e":"pv"},{"e":"ue","ue_px":"' + "x" * 1_000 + '"}]}'

    response = await client.post(TP2, data=body.encode())

    assert response.status == 503
    assert [topic for topic, _ in publisher.accepted] == [topics.RAW_EVENTS]


async def test_publish_failures_are_counted_in_metrics(make_client: MakeClient) -> None:
    client = await make_client(publisher=RefusingPublisher())
    await client.get("/i")
    await client.get("/i")

    text = await (await client.get("/metrics")).text()

    assert 'collector_publish_failures_total{topic="RawEvents"} 2.0' in text
    assert 'collector_requests_total{method="GET",route="/i",status="503"} 2.0' in text
    assert 'collector_messages_total{topic="RawEvents"}' not in text
