"""Identity rules: network user id precedence, the sp cookie and its attributes, opting out."""

from __future__ import annotations

import datetime
import email.utils
import uuid

import pytest
import yarl
from aiohttp.test_utils import TestClient

from snowplow_pipeline.collector import cookies
from snowplow_pipeline.collector.settings import (
    CollectorSettings,
    CookieSettings,
    DoNotTrackCookieSettings,
)

from .conftest import MakeClient, Sink

TP2 = "/com.snowplowanalytics.snowplow/tp2"
KNOWN_ID = "9f0a4cb4-5f7e-4a3e-8f7d-1a2b3c4d5e6f"
NOW = datetime.datetime(2025, 1, 31, 12, 0, 0, tzinfo=datetime.UTC)


def parse_set_cookie(header: str) -> tuple[str, dict[str, str]]:
    """The ``name=value`` and the attributes (flags map to "") of a Set-Cookie header."""
    first, *rest = header.split("; ")
    attributes = {}
    for part in rest:
        name, _, value = part.partition("=")
        attributes[name] = value
    return first, attributes


# Pure rules, without a server.


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("e=pv&nuid=abc&url=x", "abc"),
        ("nuid=a%20b", "a b"),
        ("%6Euid=abc", "abc"),
        ("n%75id=abc&e=pv", "abc"),
        ("nu%69d=abc", "abc"),
        ("nui%64=abc", "abc"),
        ("%6e%75%69%64=abc", "abc"),
        ("e=pv&url=https%3A%2F%2Fshop.example%2F%7Bnuid%7D", None),
        ("e=pv&co=%7B%22a%22%3A1%7D", None),
        ("", None),
    ],
)
def test_nuid_parameter_is_found_however_its_name_is_encoded(
    query: str, expected: str | None
) -> None:
    assert cookies.nuid_parameter(yarl.URL("/i?" + query if query else "/i")) == expected


def test_anonymous_header_beats_nuid_and_cookie() -> None:
    identity = cookies.identify(
        headers={"SP-Anonymous": "*", "Cookie": f"sp={KNOWN_ID}"},
        nuid="from-param",
        settings=CollectorSettings(),
    )

    assert identity.network_user_id == "00000000-0000-0000-0000-000000000000"
    assert identity.is_anonymous


def test_nuid_parameter_beats_cookie() -> None:
    identity = cookies.identify(
        headers={"Cookie": f"sp={KNOWN_ID}"},
        nuid="from-param",
        settings=CollectorSettings(),
    )

    assert identity.network_user_id == "from-param"


def test_cookie_is_used_without_nuid_parameter() -> None:
    identity = cookies.identify(
        headers={"Cookie": f"other=1; sp={KNOWN_ID}"}, nuid=None, settings=CollectorSettings()
    )

    assert identity.network_user_id == KNOWN_ID


def test_cookie_id_longer_than_a_stored_id_may_be_is_replaced_by_a_new_one() -> None:
    identity = cookies.identify(
        headers={"Cookie": "sp=" + "a" * 129}, nuid=None, settings=CollectorSettings()
    )

    assert uuid.UUID(identity.network_user_id).version == 4


def test_cookie_id_of_the_longest_stored_length_is_kept() -> None:
    longest = "a" * cookies.MAX_NETWORK_USER_ID_CHARS

    identity = cookies.identify(
        headers={"Cookie": f"sp={longest}"}, nuid=None, settings=CollectorSettings()
    )

    assert identity.network_user_id == longest


def test_no_cookie_is_set_for_an_id_too_long_to_be_stored() -> None:
    too_long = "a" * (cookies.MAX_NETWORK_USER_ID_CHARS + 1)

    assert (
        cookies.set_cookie_header(
            network_user_id=too_long, origin=None, settings=CookieSettings(), now=NOW
        )
        is None
    )
    assert (
        cookies.SetCookieHeaders(CookieSettings()).header(network_user_id=too_long, origin=None)
        is None
    )


def test_configured_cookie_name_is_read() -> None:
    settings = CollectorSettings(cookie=CookieSettings(name="mini_id"))

    identity = cookies.identify(
        headers={"Cookie": f"sp=wrong; mini_id={KNOWN_ID}"}, nuid=None, settings=settings
    )

    assert identity.network_user_id == KNOWN_ID


def test_new_visitor_gets_a_random_uuid4() -> None:
    identity = cookies.identify(headers={}, nuid=None, settings=CollectorSettings())

    assert uuid.UUID(identity.network_user_id).version == 4
    assert not identity.is_anonymous


def test_new_network_user_ids_are_distinct_version_4_uuids_in_canonical_form() -> None:
    ids = [cookies.new_network_user_id() for _ in range(20_000)]

    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text
    # Every hex digit shows up in every random position, so no bit is stuck.
    for position in (0, 9, 15, 19, 35):
        digits = {text[position] for text in ids}
        assert len(digits) == (4 if position == 19 else 16), position


@pytest.mark.parametrize(
    ("cookie", "is_opted_out"),
    [("optout=yes", True), ("optout=YES-please", True), ("optout=no", False), ("other=yes", False)],
    ids=["matching", "full-match", "not-matching", "absent"],
)
def test_do_not_track_cookie_must_match_the_whole_value(cookie: str, is_opted_out: bool) -> None:
    settings = CollectorSettings(
        do_not_track_cookie=DoNotTrackCookieSettings(
            enabled=True, name="optout", value="yes|YES-.*"
        )
    )

    identity = cookies.identify(headers={"Cookie": cookie}, nuid=None, settings=settings)

    assert identity.is_opted_out is is_opted_out


def test_disabled_do_not_track_cookie_is_ignored() -> None:
    settings = CollectorSettings(
        do_not_track_cookie=DoNotTrackCookieSettings(enabled=False, name="optout")
    )

    identity = cookies.identify(headers={"Cookie": "optout=1"}, nuid=None, settings=settings)

    assert not identity.is_opted_out


def test_cookie_header_keeps_only_valid_cookies_as_sent() -> None:
    header = 'sp=abc; bad name=1; quoted="q v"; ok="fine"; noequals; =x; semi=a,b'

    assert cookies.clean_cookie_header(header) == 'sp=abc; ok="fine"'
    assert cookies.parse_cookie_header(header) == [("sp", "abc"), ("ok", "fine")]


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://acme.com", "acme.com"),
        ("https://shop.acme.com:8443", "acme.com"),
        ("https://blog.other.org", "other.org"),
        ("https://unrelated.net https://www.other.org", "other.org"),
        ("https://notacme.com", "fallback.example"),
        ("null", "fallback.example"),
        (None, "fallback.example"),
    ],
    ids=["equal", "subdomain", "second-domain", "second-origin", "suffix-only", "null", "none"],
)
def test_cookie_domain_is_first_configured_domain_matching_the_origin(
    origin: str | None, expected: str
) -> None:
    settings = CookieSettings(
        domains=[".acme.com", "other.org"], fallback_domain="fallback.example"
    )

    assert cookies.cookie_domain(origin=origin, settings=settings) == expected


def test_cookie_has_no_domain_without_match_or_fallback() -> None:
    settings = CookieSettings(domains=["acme.com"])

    assert cookies.cookie_domain(origin="https://other.org", settings=settings) is None


def test_set_cookie_carries_id_path_expiry_and_default_attributes() -> None:
    header = cookies.set_cookie_header(
        network_user_id=KNOWN_ID, origin=None, settings=CookieSettings(), now=NOW
    )

    assert header == (
        f"sp={KNOWN_ID}; Expires=Sat, 31 Jan 2026 12:00:00 GMT; Max-Age=31536000; Path=/; "
        "SameSite=None; Secure"
    )


def test_set_cookie_follows_configured_attributes() -> None:
    settings = CookieSettings(
        name="mini",
        expiration_days=1,
        domains=["acme.com"],
        secure=False,
        http_only=True,
        same_site="Lax",
    )

    header = cookies.set_cookie_header(
        network_user_id=KNOWN_ID, origin="https://www.acme.com", settings=settings, now=NOW
    )

    assert header == (
        f"mini={KNOWN_ID}; Expires=Sat, 01 Feb 2025 12:00:00 GMT; Max-Age=86400; "
        "Domain=acme.com; Path=/; SameSite=Lax; HttpOnly"
    )


@pytest.mark.parametrize("origin", [None, "https://www.acme.com", "https://other.org", "null"])
def test_running_collector_sets_the_same_cookie_as_the_rule(
    origin: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = CookieSettings(domains=["acme.com"], http_only=True)
    headers = cookies.SetCookieHeaders(settings)
    monkeypatch.setattr(cookies.time, "time", lambda: NOW.timestamp() + 0.75)

    header = headers.header(network_user_id=KNOWN_ID, origin=origin)

    assert header == cookies.set_cookie_header(
        network_user_id=KNOWN_ID, origin=origin, settings=settings, now=NOW
    )


def test_running_collector_moves_the_expiry_with_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    headers = cookies.SetCookieHeaders(CookieSettings(expiration_days=1))
    clock = [NOW.timestamp()]
    monkeypatch.setattr(cookies.time, "time", lambda: clock[0])

    first = headers.header(network_user_id=KNOWN_ID, origin=None)
    clock[0] += 61
    later = headers.header(network_user_id=KNOWN_ID, origin=None)

    assert first is not None and later is not None
    assert parse_set_cookie(later)[1]["Expires"] == email.utils.format_datetime(
        NOW + datetime.timedelta(days=1, seconds=61), usegmt=True
    )
    assert parse_set_cookie(first)[1]["Expires"] != parse_set_cookie(later)[1]["Expires"]


def test_running_collector_keeps_few_origins_however_many_it_sees() -> None:
    headers = cookies.SetCookieHeaders(CookieSettings(domains=["acme.com"]), max_origins=8)

    for index in range(1000):
        header = headers.header(network_user_id=KNOWN_ID, origin=f"https://x{index}.acme.com")
        assert header is not None and "Domain=acme.com" in header

    assert len(headers._attributes) <= 8
    assert headers.header(network_user_id="a b;c", origin=None) is None


def test_no_cookie_is_set_for_an_id_that_cannot_be_a_cookie_value() -> None:
    header = cookies.set_cookie_header(
        network_user_id="a b;c", origin=None, settings=CookieSettings(), now=NOW
    )

    assert header is None


# The same rules seen through HTTP.


async def test_new_visitor_gets_sp_cookie_with_the_stored_network_user_id(
    client: TestClient, sink: Sink
) -> None:
    response = await client.get("/i")

    [payload] = await sink.payloads()
    first, attributes = parse_set_cookie(response.headers["Set-Cookie"])
    assert first == f"sp={payload.network_user_id}"
    assert uuid.UUID(payload.network_user_id).version == 4
    assert attributes["Path"] == "/"
    assert attributes["Max-Age"] == "31536000"
    assert attributes["SameSite"] == "None"
    assert "Secure" in attributes
    assert "HttpOnly" not in attributes
    assert "Domain" not in attributes
    expires = email.utils.parsedate_to_datetime(attributes["Expires"])
    expected = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=365)
    assert abs((expires - expected).total_seconds()) < 60


async def test_returning_visitor_keeps_the_id_and_gets_the_cookie_refreshed(
    client: TestClient, sink: Sink
) -> None:
    response = await client.post(TP2, data=b"{}", headers={"Cookie": f"sp={KNOWN_ID}"})

    [payload] = await sink.payloads()
    assert payload.network_user_id == KNOWN_ID
    assert response.headers["Set-Cookie"].startswith(f"sp={KNOWN_ID}; Expires=")


async def test_nuid_parameter_overrides_the_cookie_in_payload_and_new_cookie(
    client: TestClient, sink: Sink
) -> None:
    response = await client.get("/i?nuid=server-side-id", headers={"Cookie": f"sp={KNOWN_ID}"})

    [payload] = await sink.payloads()
    assert payload.network_user_id == "server-side-id"
    assert response.headers["Set-Cookie"].startswith("sp=server-side-id; ")


async def test_cookie_domain_comes_from_the_origin(make_client: MakeClient) -> None:
    client = await make_client(cookie={"domains": ["acme.com"], "fallback_domain": "mini.dev"})

    matching = await client.get("/i", headers={"Origin": "https://shop.acme.com"})
    other = await client.get("/i", headers={"Origin": "https://elsewhere.org"})

    assert parse_set_cookie(matching.headers["Set-Cookie"])[1]["Domain"] == "acme.com"
    assert parse_set_cookie(other.headers["Set-Cookie"])[1]["Domain"] == "mini.dev"


async def test_anonymous_request_is_stored_without_identity_and_gets_no_cookie(
    client: TestClient, sink: Sink
) -> None:
    response = await client.get(
        "/i?e=pv",
        headers={
            "SP-Anonymous": "*",
            "Cookie": f"sp={KNOWN_ID}",
            "X-Forwarded-For": "203.0.113.7",
            "X-Real-Ip": "203.0.113.7",
        },
    )

    [payload] = await sink.payloads()
    assert response.status == 200
    assert "Set-Cookie" not in response.headers
    assert payload.network_user_id == "00000000-0000-0000-0000-000000000000"
    assert payload.ip_address == "unknown"
    stored_names = {header.split(":")[0].lower() for header in payload.headers}
    assert stored_names.isdisjoint({"cookie", "x-forwarded-for", "x-real-ip"})
    assert "SP-Anonymous: *" in payload.headers


async def test_disabled_cookie_is_never_set(make_client: MakeClient, sink: Sink) -> None:
    client = await make_client(cookie={"enabled": False})

    response = await client.get("/i")

    assert "Set-Cookie" not in response.headers
    assert len(await sink.payloads()) == 1


async def test_do_not_track_cookie_gets_normal_answer_no_cookie_and_nothing_stored(
    make_client: MakeClient, sink: Sink
) -> None:
    client = await make_client(
        do_not_track_cookie={"enabled": True, "name": "sp_optout", "value": "1"}
    )

    pixel = await client.get("/i?e=pv", headers={"Cookie": "sp_optout=1"})
    post = await client.post(TP2, data=b"{}", headers={"Cookie": "sp_optout=1"})

    assert (pixel.status, pixel.headers["Content-Type"]) == (200, "image/gif")
    assert (post.status, await post.text()) == (200, "ok")
    assert "Set-Cookie" not in pixel.headers
    assert "Set-Cookie" not in post.headers
    assert await sink.payloads() == []
