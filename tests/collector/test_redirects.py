"""Redirect tracking on /r/tp2: off by default, and when on, stored and then redirected."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from .conftest import MakeClient, Sink


async def test_redirect_is_disabled_by_default_and_not_stored(
    client: TestClient, sink: Sink
) -> None:
    response = await client.get("/r/tp2?u=https://acme.com/", allow_redirects=False)

    assert response.status == 404
    assert await response.text() == "redirects are disabled\n"
    assert await sink.payloads() == []


async def test_enabled_redirect_stores_the_event_and_answers_302_to_u(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(redirect={"enabled": True})

    response = await client.get(
        "/r/tp2?e=se&se_ca=link&u=https%3A%2F%2Facme.com%2Fpage%3Fa%3D1", allow_redirects=False
    )

    assert response.status == 302
    assert response.headers["Location"] == "https://acme.com/page?a=1"
    assert response.headers["Set-Cookie"].startswith("sp=")
    [payload] = await sink.payloads()
    assert payload.path == "/r/tp2"
    assert payload.querystring is not None and "se_ca=link" in payload.querystring


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("e=se", "query parameter u is missing; expected the URL to redirect to"),
        ("u=javascript%3Aalert(1)", "query parameter u is not an absolute http or https URL"),
        ("u=%2Fpage", "query parameter u is not an absolute http or https URL"),
        ("u=https%3A%2F%2Fa.com%2F%0d%0aX-Evil%3A%201", "is not an absolute http or https URL"),
        ("u=https%3A%2F%2Fevil.org%2F", "points to a host that is not allowed; allowed: acme.com"),
    ],
    ids=["missing", "javascript", "relative", "header-injection", "not-allowed"],
)
async def test_bad_redirect_target_is_answered_400_naming_the_problem_and_still_stored(
    make_client: MakeClient, sink: Sink, query: str, problem: str
) -> None:
    client = await make_client(redirect={"enabled": True, "allowed_hosts": ["acme.com"]})

    response = await client.get(f"/r/tp2?{query}", allow_redirects=False)

    assert response.status == 400
    assert problem in await response.text()
    assert "Location" not in response.headers
    assert len(await sink.payloads()) == 1


async def test_redirect_to_an_allowed_host_is_followed(make_client: MakeClient) -> None:
    client = await make_client(redirect={"enabled": True, "allowed_hosts": ["ACME.com"]})

    response = await client.get("/r/tp2?u=https://acme.com/x", allow_redirects=False)

    assert (response.status, response.headers["Location"]) == (302, "https://acme.com/x")


async def test_custom_path_mapped_to_redirect_redirects(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(redirect={"enabled": True}, path_mappings={"/go/to": "/r/tp2"})

    response = await client.get("/go/to?u=https://acme.com/", allow_redirects=False)

    assert (response.status, response.headers["Location"]) == (302, "https://acme.com/")
    [payload] = await sink.payloads()
    assert payload.path == "/r/tp2"
