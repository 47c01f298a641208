"""Configurable enrichments: loading upstream's config files, and each enrichment's output.

Enrichments are checked through ``Enricher.process`` on real collector payloads with exact field
values; every good line must also read in the Python analytics SDK. MaxMind databases are
written by the tests with ``mmdb-writer``: nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from snowplow_analytics_sdk import event_transformer

from snowplow_pipeline import cli, enriched, local
from snowplow_pipeline.enrich import enrichments, processing
from snowplow_pipeline.enrich.enrichments import anonymisation, jsonpaths, loading
from snowplow_pipeline.iglu import resolving
from tests.enrich.conftest import contexts, get_payload, sdj, unstruct

SP = "com.snowplowanalytics.snowplow"
SPE = "com.snowplowanalytics.snowplow.enrichments"
USER = "iglu:com.acme/user/jsonschema/1-0-0"
CHECKOUT = "iglu:com.acme/checkout/jsonschema/1-0-0"
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/118.0.5993.88 Safari/537.36"
)
PAGE_VIEW = {"e": "pv", "p": "web", "tv": "js-3.0.0", "url": "https://shop.test/boots"}
UA_CONTEXT = f"iglu:{SP}/ua_parser_context/jsonschema/1-0-0"
COOKIE = "iglu:org.ietf/http_cookie/jsonschema/1-0-0"
HEADER = "iglu:org.ietf/http_header/jsonschema/1-0-0"

Make = Callable[..., Awaitable[processing.Enricher]]


def write_config(
    folder: Path,
    name: str,
    parameters: Any,
    *,
    version: str = "1-0-0",
    vendor: str = SP,
    enabled: bool = True,
    file: str | None = None,
    **data: Any,
) -> Path:
    config = {
        "schema": f"iglu:{vendor}/{name}/jsonschema/{version}",
        "data": {
            "vendor": vendor,
            "name": name,
            "enabled": enabled,
            "parameters": parameters,
            **data,
        },
    }
    path = folder / (file or f"{name}.json")
    path.write_text(json.dumps(config, indent=2))
    return path


def write_maxmind(path: Path, database_type: str, records: dict[str, dict[str, Any]]) -> None:
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description="test data",
    )
    for network, record in records.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "enrichments"
    path.mkdir()
    return path


@pytest.fixture
def maxmind(tmp_path: Path) -> Path:
    """A folder with small City, ISP, Domain and Connection-Type databases."""
    path = tmp_path / "maxmind"
    path.mkdir()
    city = {
        "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
        "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
        "city": {"names": {"en": "London"}},
        "postal": {"code": "EC2V"},
        "location": {"latitude": 51.5142, "longitude": -0.0931, "time_zone": "Europe/London"},
    }
    write_maxmind(path / "GeoLite2-City.mmdb", "GeoIP2-City", {"203.0.113.0/24": city})
    write_maxmind(
        path / "GeoIP2-ISP.mmdb",
        "GeoIP2-ISP",
        {"203.0.113.0/24": {"isp": "Acme Telecom", "organization": "Acme Ltd"}},
    )
    write_maxmind(
        path / "GeoIP2-Domain.mmdb", "GeoIP2-Domain", {"203.0.113.0/24": {"domain": "acme.test"}}
    )
    write_maxmind(
        path / "GeoIP2-Connection-Type.mmdb",
        "GeoIP2-Connection-Type",
        {"203.0.113.0/24": {"connection_type": "Cable/DSL"}},
    )
    return path


def ip_lookups_parameters(maxmind: Path) -> dict[str, Any]:
    return {
        "geo": {"database": "GeoLite2-City.mmdb", "uri": str(maxmind)},
        "isp": {"database": "GeoIP2-ISP.mmdb", "uri": str(maxmind)},
        "domain": {"database": "GeoIP2-Domain.mmdb", "uri": str(maxmind)},
        "connectionType": {"database": "GeoIP2-Connection-Type.mmdb", "uri": f"file://{maxmind}"},
    }


@pytest.fixture
async def make_enricher(folder: Path, schema_folder: Path) -> AsyncIterator[Make]:
    """Builds an Enricher with the enrichments configured in ``folder``."""
    resolver = resolving.Resolver.from_config(
        {
            "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
            "data": {
                "cacheSize": 100,
                "repositories": [
                    {
                        "name": "Test schemas",
                        "priority": 0,
                        "vendorPrefixes": ["com.acme"],
                        "connection": {"embedded": {"path": str(schema_folder)}},
                    }
                ],
            },
        }
    )
    built: list[processing.Enrichment] = []

    async def make() -> processing.Enricher:
        built.extend(enrichments.load_enrichments(folder))
        return processing.Enricher(resolver=resolver, enrichments=built)

    yield make
    enrichments.close_enrichments(built)
    await resolver.close()


async def good_event(enricher: processing.Enricher, message: bytes) -> dict[str, Any]:
    """The one enriched event of ``message``, as the SDK reads it (and as we read it)."""
    outcome = await enricher.process(message)
    assert outcome.bad == []
    [line] = outcome.good
    theirs = event_transformer.transform(line)
    ours = enriched.to_json(enriched.from_tsv(line))
    assert theirs == ours
    return ours


async def raw_event(enricher: processing.Enricher, message: bytes) -> dict[str, str]:
    """The one enriched event as raw TSV fields (good line also checked by the SDK)."""
    outcome = await enricher.process(message)
    assert outcome.bad == []
    [line] = outcome.good
    event_transformer.transform(line)
    return enriched.from_tsv(line)


def derived(fields: dict[str, str], schema: str) -> list[dict[str, Any]]:
    wrapper = json.loads(fields.get("derived_contexts", '{"data": []}'))
    return [entity["data"] for entity in wrapper["data"] if entity["schema"] == schema]


# Campaign attribution


CAMPAIGN_FIELDS = {
    "mktMedium": ["utm_medium", "medium"],
    "mktSource": ["utm_source", "source"],
    "mktTerm": ["utm_term"],
    "mktContent": ["utm_content"],
    "mktCampaign": ["utm_campaign", "cid"],
}


async def test_campaign_parameters_fill_the_marketing_fields(folder: Path, make_enricher: Make):
    write_config(folder, "campaign_attribution", {"mapping": "static", "fields": CAMPAIGN_FIELDS})
    url = (
        "https://shop.test/boots?medium=ignored&utm_medium=cpc&source=news&utm_term=red%20boots"
        "&utm_content=banner&cid=spring-24&utm_campaign=&gclid=Cj0KCQ"
    )

    event = await raw_event(await make_enricher(), get_payload({**PAGE_VIEW, "url": url}))

    assert event["mkt_medium"] == "cpc"  # the first configured parameter wins
    assert event["mkt_source"] == "news"
    assert event["mkt_term"] == "red boots"
    assert event["mkt_content"] == "banner"
    assert event["mkt_campaign"] == "spring-24"  # an empty utm_campaign does not count
    assert (event["mkt_clickid"], event["mkt_network"]) == ("Cj0KCQ", "Google")


async def test_configured_click_ids_extend_the_default_ones(folder: Path, make_enricher: Make):
    fields = {**CAMPAIGN_FIELDS, "mktClickId": {"ttclid": "TikTok"}}
    write_config(folder, "campaign_attribution", {"fields": fields}, version="1-0-1")
    enricher = await make_enricher()

    tiktok = await raw_event(
        enricher, get_payload({**PAGE_VIEW, "url": "https://a.test/?ttclid=t1"})
    )
    microsoft = await raw_event(
        enricher, get_payload({**PAGE_VIEW, "url": "https://a.test/?msclkid=m1"})
    )
    none = await raw_event(enricher, get_payload(PAGE_VIEW))

    assert (tiktok["mkt_clickid"], tiktok["mkt_network"]) == ("t1", "TikTok")
    assert (microsoft["mkt_clickid"], microsoft["mkt_network"]) == ("m1", "Microsoft")
    assert not any(name.startswith("mkt_") for name in none)


# Referer parser


def referer_parameters(**more: Any) -> dict[str, Any]:
    return {
        "internalDomains": ["blog.shop.test"],
        "database": "referers-latest.json",
        "uri": "https://assets.example.invalid/third-party/referer-parser/",
        **more,
    }


@pytest.mark.parametrize(
    ("referrer", "medium", "source", "term"),
    [
        pytest.param(
            "https://www.google.co.uk/search?q=red+boots",
            "search",
            "Google",
            "red boots",
            id="google",
        ),
        pytest.param(
            "https://www.bing.com/search?form=x&q=boots", "search", "Bing", "boots", id="bing"
        ),
        pytest.param(
            "https://duckduckgo.com/?q=boots", "search", "DuckDuckGo", "boots", id="duckduckgo"
        ),
        pytest.param(
            "https://uk.search.yahoo.com/search?p=boots", "search", "Yahoo!", "boots", id="yahoo"
        ),
        pytest.param("https://www.baidu.com/s?wd=boots", "search", "Baidu", "boots", id="baidu"),
        pytest.param(
            "https://yandex.ru/search/?text=boots", "search", "Yandex", "boots", id="yandex"
        ),
        pytest.param("https://www.google.com/", "search", "Google", None, id="search-without-term"),
        pytest.param("https://m.facebook.com/story", "social", "Facebook", None, id="facebook"),
        pytest.param("https://t.co/abc", "social", "Twitter", None, id="twitter"),
        pytest.param("https://x.com/acme", "social", "Twitter", None, id="x"),
        pytest.param("https://www.linkedin.com/feed/", "social", "LinkedIn", None, id="linkedin"),
        pytest.param("https://old.reddit.com/r/boots", "social", "Reddit", None, id="reddit"),
        pytest.param("https://mail.google.com/mail/u/0/", "email", "Gmail", None, id="gmail"),
        pytest.param(
            "https://outlook.live.com/mail/0/", "email", "Outlook.com", None, id="outlook"
        ),
        pytest.param("https://blog.shop.test/post", "internal", None, None, id="internal-domain"),
        pytest.param("https://shop.test/home", "internal", None, None, id="same-host"),
        pytest.param("https://forum.example.test/t/1", "unknown", None, None, id="unknown"),
    ],
)
async def test_referrer_gives_medium_source_and_term(
    folder: Path,
    make_enricher: Make,
    referrer: str,
    medium: str,
    source: str | None,
    term: str | None,
):
    write_config(folder, "referer_parser", referer_parameters(), version="2-0-0")

    event = await raw_event(await make_enricher(), get_payload({**PAGE_VIEW, "refr": referrer}))

    assert event["refr_medium"] == medium
    assert event.get("refr_source") == source
    assert event.get("refr_term") == term


def test_remote_referer_database_falls_back_to_the_bundled_one_with_a_warning(
    folder: Path, caplog: pytest.LogCaptureFixture
):
    write_config(folder, "referer_parser", referer_parameters(), version="2-0-0")

    with caplog.at_level(logging.WARNING):
        [parser] = enrichments.load_enrichments(folder)

    assert parser.database.find("www.google.de", "/") is not None
    assert "referers-latest.json" in caplog.text
    assert "not downloaded; using the bundled database" in caplog.text


async def test_local_referer_database_replaces_the_bundled_one(
    folder: Path, tmp_path: Path, make_enricher: Make
):
    (tmp_path / "assets").mkdir()
    database = {"search": {"Acme Search": {"domains": ["find.acme.test"], "parameters": ["k"]}}}
    (tmp_path / "assets" / "mine.json").write_text(json.dumps(database))
    parameters = referer_parameters(uri="../assets", database="mine.json")
    write_config(folder, "referer_parser", parameters, version="2-0-0")
    enricher = await make_enricher()

    acme = await raw_event(
        enricher, get_payload({**PAGE_VIEW, "refr": "http://find.acme.test/?k=boots"})
    )
    google = await raw_event(enricher, get_payload({**PAGE_VIEW, "refr": "https://google.com/"}))

    assert (acme["refr_medium"], acme["refr_source"], acme["refr_term"]) == (
        "search",
        "Acme Search",
        "boots",
    )
    assert google["refr_medium"] == "unknown"


# UA parser


async def test_ua_parser_adds_the_ua_parser_context(folder: Path, make_enricher: Make):
    write_config(folder, "ua_parser_config", {})

    event = await good_event(await make_enricher(), get_payload({**PAGE_VIEW, "ua": CHROME_MAC}))

    assert event["contexts_com_snowplowanalytics_snowplow_ua_parser_context_1"] == [
        {
            "useragentFamily": "Chrome",
            "useragentMajor": "118",
            "useragentMinor": "0",
            "useragentPatch": "5993",
            "useragentVersion": "Chrome 118.0.5993",
            "osFamily": "Mac OS X",
            "osMajor": "10",
            "osMinor": "15",
            "osPatch": "7",
            "osPatchMinor": None,
            "osVersion": "Mac OS X 10.15.7",
            "deviceFamily": "Mac",
        }
    ]


async def test_ua_parser_parses_each_user_agent_once(folder: Path, make_enricher: Make):
    write_config(folder, "ua_parser_config", {}, version="1-0-1")
    enricher = await make_enricher()
    [parser] = enricher.enrichments

    for _ in range(3):
        await raw_event(enricher, get_payload({**PAGE_VIEW, "ua": CHROME_MAC}))
    unknown = await raw_event(enricher, get_payload(PAGE_VIEW))

    assert parser.context.cache_info().misses == 2
    assert parser.context.cache_info().hits == 2
    assert derived(unknown, UA_CONTEXT)[0]["useragentFamily"] == "Other"


async def test_local_ua_rules_file_replaces_the_bundled_rules(folder: Path, make_enricher: Make):
    rules = {
        "user_agent_parsers": [{"regex": r"(AcmeBot)/(\d+)\.(\d+)", "family_replacement": "Acme"}],
        "os_parsers": [],
        "device_parsers": [],
    }
    rules_folder = folder.parent / "ua"
    rules_folder.mkdir()
    (rules_folder / "regexes.json").write_text(json.dumps(rules))
    parameters = {"database": "regexes.json", "uri": "../ua"}
    write_config(folder, "ua_parser_config", parameters, version="1-0-1")

    event = await raw_event(await make_enricher(), get_payload({**PAGE_VIEW, "ua": "AcmeBot/2.5"}))

    [context] = derived(event, UA_CONTEXT)
    assert (context["useragentFamily"], context["useragentVersion"]) == ("Acme", "Acme 2.5")
    assert context["osFamily"] == "Other"


# Event fingerprint


def expected_fingerprint(parameters: dict[str, str], algorithm: str, excluded: set[str]) -> str:
    text = "".join(
        f"{name}\x1f{parameters[name]}\x1f" for name in sorted(parameters) if name not in excluded
    )
    return hashlib.new(algorithm, text.encode()).hexdigest()


async def test_event_fingerprint_hashes_the_parameters_minus_the_excluded_ones(
    folder: Path, make_enricher: Make
):
    parameters = {"excludeParameters": ["eid", "stm"], "hashAlgorithm": "MD5"}
    write_config(folder, "event_fingerprint_config", parameters)
    enricher = await make_enricher()
    sent = {**PAGE_VIEW, "eid": "c6ef3124-b53a-4b13-a233-0088f79dcbcb", "stm": "1700000000000"}
    retried = {"stm": "1700000009999", **dict(reversed(PAGE_VIEW.items()))}

    first = await raw_event(enricher, get_payload(sent))
    second = await raw_event(enricher, get_payload(retried))
    other = await raw_event(enricher, get_payload({**PAGE_VIEW, "page": "Boots"}))

    assert first["event_fingerprint"] == expected_fingerprint(PAGE_VIEW, "md5", set())
    assert len(first["event_fingerprint"]) == 32
    assert second["event_fingerprint"] == first["event_fingerprint"]
    assert other["event_fingerprint"] != first["event_fingerprint"]


@pytest.mark.parametrize(
    ("algorithm", "hashlib_name", "hex_length"),
    [("SHA1", "sha1", 40), ("SHA256", "sha256", 64), ("SHA384", "sha384", 96)],
)
async def test_event_fingerprint_uses_the_configured_algorithm(
    folder: Path, make_enricher: Make, algorithm: str, hashlib_name: str, hex_length: int
):
    parameters = {"excludeParameters": [], "hashAlgorithm": algorithm}
    write_config(folder, "event_fingerprint_config", parameters, version="1-0-1")

    event = await raw_event(await make_enricher(), get_payload(PAGE_VIEW))

    assert event["event_fingerprint"] == expected_fingerprint(PAGE_VIEW, hashlib_name, set())
    assert len(event["event_fingerprint"]) == hex_length


# Cookie and header extractors


async def test_cookie_extractor_adds_the_named_cookies(folder: Path, make_enricher: Make):
    write_config(folder, "cookie_extractor_config", {"cookies": ["sp", "_ga", "absent"]})
    headers = ["Host: collector.test", "Cookie: _ga=GA1.2.3; theme=dark; sp=2c2ae7e6"]

    event = await good_event(await make_enricher(), get_payload(PAGE_VIEW, headers=headers))

    assert event["contexts_org_ietf_http_cookie_1"] == [
        {"name": "_ga", "value": "GA1.2.3"},
        {"name": "sp", "value": "2c2ae7e6"},
    ]


async def test_header_extractor_adds_headers_whose_whole_name_matches(
    folder: Path, make_enricher: Make
):
    write_config(
        folder,
        "http_header_extractor_config",
        {"headersPattern": "x-acme-.*|Accept-Language"},
        vendor=SPE,
    )
    headers = [
        "X-Acme-Tenant: blue",
        "accept-language: en-GB,en;q=0.9",
        "X-Other-Acme-Id: 7",
        "Host: collector.test",
    ]

    event = await good_event(await make_enricher(), get_payload(PAGE_VIEW, headers=headers))

    assert event["contexts_org_ietf_http_header_1"] == [
        {"name": "X-Acme-Tenant", "value": "blue"},
        {"name": "accept-language", "value": "en-GB,en;q=0.9"},
    ]


# IP lookups and IP anonymisation


async def test_ip_lookups_fill_geo_and_ip_fields(folder: Path, maxmind: Path, make_enricher: Make):
    write_config(folder, "ip_lookups", ip_lookups_parameters(maxmind), version="2-0-0")

    event = await raw_event(await make_enricher(), get_payload(PAGE_VIEW))

    assert {name: value for name, value in event.items() if name.startswith(("geo_", "ip_"))} == {
        "geo_country": "GB",
        "geo_region": "ENG",
        "geo_region_name": "England",
        "geo_city": "London",
        "geo_zipcode": "EC2V",
        "geo_latitude": "51.5142",
        "geo_longitude": "-0.0931",
        "geo_timezone": "Europe/London",
        "ip_isp": "Acme Telecom",
        "ip_organization": "Acme Ltd",
        "ip_domain": "acme.test",
        "ip_netspeed": "Cable/DSL",
    }


@pytest.mark.parametrize("address", ["198.51.100.7", "2001:db8::1", "unknown"])
async def test_ip_lookups_leave_fields_empty_for_addresses_they_do_not_know(
    folder: Path, maxmind: Path, make_enricher: Make, address: str
):
    write_config(folder, "ip_lookups", ip_lookups_parameters(maxmind), version="2-0-1")

    event = await raw_event(await make_enricher(), get_payload({**PAGE_VIEW, "ip": address}))

    assert event["user_ipaddress"] == address
    assert [name for name in event if name.startswith(("geo_", "ip_"))] == []


async def test_unreadable_geo_database_makes_an_enrichment_failure(
    folder: Path, maxmind: Path, make_enricher: Make
):
    city = maxmind / "GeoLite2-City.mmdb"
    corrupted = bytearray(city.read_bytes())
    corrupted[:60] = b"\xff" * 60  # the search tree; the metadata at the end stays readable
    city.write_bytes(bytes(corrupted))
    parameters = {"geo": {"database": "GeoLite2-City.mmdb", "uri": str(maxmind)}}
    write_config(folder, "ip_lookups", parameters, version="2-0-0")

    outcome = await (await make_enricher()).process(get_payload(PAGE_VIEW))

    assert outcome.good == []
    [row] = outcome.bad
    assert row["schema"] == (
        "iglu:com.snowplowanalytics.snowplow.badrows/enrichment_failures/jsonschema/2-0-1"
    )
    [message] = row["data"]["failure"]["messages"]
    assert message["enrichment"] == {
        "schemaKey": f"iglu:{SP}/ip_lookups/jsonschema/2-0-0",
        "identifier": "ip_lookups",
    }
    assert message["message"].startswith("the geo database cannot be read: ")
    assert "corrupt" in message["message"]


@pytest.mark.parametrize(
    ("address", "octets", "segments", "expected"),
    [
        pytest.param("203.0.113.9", 1, 1, "203.0.113.x", id="ipv4-one-octet"),
        pytest.param("203.0.113.9", 3, 1, "203.x.x.x", id="ipv4-three-octets"),
        pytest.param("203.0.113.9", 4, 1, "x.x.x.x", id="ipv4-all-octets"),
        pytest.param("2001:db8::1", 1, 3, "2001:db8:0:0:0:x:x:x", id="ipv6-compressed"),
        pytest.param(
            "2001:0DB8:85a3:0:0:8a2e:0370:7334", 1, 2, "2001:db8:85a3:0:0:8a2e:x:x", id="ipv6-full"
        ),
        pytest.param("not-an-ip", 2, 2, "not-an-ip", id="not-an-address"),
    ],
)
def test_anonymise_masks_the_end_of_the_address(
    address: str, octets: int, segments: int, expected: str
):
    assert anonymisation.anonymise(address, octets=octets, segments=segments) == expected


async def test_ip_lookups_see_the_whole_address_before_anonymisation_masks_it(
    folder: Path, maxmind: Path, make_enricher: Make
):
    write_config(
        folder, "anon_ip", {"anonOctets": 2, "anonSegments": 4}, version="1-0-1", file="a.json"
    )
    write_config(
        folder, "ip_lookups", ip_lookups_parameters(maxmind), version="2-0-0", file="b.json"
    )
    enricher = await make_enricher()

    v4 = await raw_event(enricher, get_payload(PAGE_VIEW))
    v6 = await raw_event(enricher, get_payload({**PAGE_VIEW, "ip": "2001:db8:1:2:3:4:5:6"}))

    assert (v4["user_ipaddress"], v4["geo_city"]) == ("203.0.x.x", "London")
    assert v6["user_ipaddress"] == "2001:db8:1:2:x:x:x:x"


async def test_anon_ip_1_0_0_masks_ipv6_as_many_segments_as_octets(
    folder: Path, make_enricher: Make
):
    write_config(folder, "anon_ip", {"anonOctets": 3})

    event = await raw_event(await make_enricher(), get_payload({**PAGE_VIEW, "ip": "2001:db8::7"}))

    assert event["user_ipaddress"] == "2001:db8:0:0:0:x:x:x"


# PII pseudonymisation


def pii_parameters(*rules: dict[str, Any], function: str = "SHA-256") -> dict[str, Any]:
    return {
        "pii": list(rules),
        "strategy": {"pseudonymize": {"hashFunction": function, "salt": "pepper"}},
    }


def salted(value: str, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, (value + "pepper").encode()).hexdigest()


async def test_pii_hashes_atomic_fields_and_json_fields_with_the_salt(
    folder: Path, make_enricher: Make
):
    parameters = pii_parameters(
        {"pojo": {"field": "user_id"}},
        {"pojo": {"field": "user_ipaddress"}},
        {
            "json": {
                "field": "contexts",
                "schemaCriterion": "iglu:com.acme/user/jsonschema/1-*-*",
                "jsonPath": "$.id",
            }
        },
        {
            "json": {
                "field": "unstruct_event",
                "schemaCriterion": "iglu:com.acme/checkout/jsonschema/1-0-*",
                "jsonPath": "$['sku']",
            }
        },
    )
    write_config(
        folder, "pii_enrichment_config", parameters, version="2-0-0", vendor=SPE, emitEvent=False
    )
    message = get_payload(
        {
            "e": "ue",
            "p": "web",
            "tv": "t",
            "uid": "alice@acme.test",
            "ue_pr": unstruct(sdj(CHECKOUT, {"price": 12.5, "sku": "BOOT-7"})),
            "co": contexts(sdj(USER, {"id": "alice", "plan": "pro"}), sdj(USER, {"id": "bob"})),
        }
    )

    event = await good_event(await make_enricher(), message)

    assert event["user_id"] == salted("alice@acme.test")
    assert event["user_ipaddress"] == salted("203.0.113.9")
    assert event["unstruct_event_com_acme_checkout_1"] == {"price": 12.5, "sku": salted("BOOT-7")}
    assert event["contexts_com_acme_user_1"] == [
        {"id": salted("alice"), "plan": "pro"},
        {"id": salted("bob")},
    ]


async def test_pii_runs_last_and_hashes_derived_entities_without_touching_the_ua_cache(
    folder: Path, make_enricher: Make
):
    write_config(folder, "ua_parser_config", {})
    rule = {
        "json": {
            "field": "derived_contexts",
            "schemaCriterion": f"iglu:{SP}/ua_parser_context/jsonschema/1-*-*",
            "jsonPath": "$.useragentFamily",
        }
    }
    parameters = pii_parameters(rule, function="MD5")
    write_config(folder, "pii_enrichment_config", parameters, version="2-0-1", vendor=SPE)
    enricher = await make_enricher()

    first = await raw_event(enricher, get_payload({**PAGE_VIEW, "ua": CHROME_MAC}))
    second = await raw_event(enricher, get_payload({**PAGE_VIEW, "ua": CHROME_MAC}))

    for event in (first, second):
        [context] = derived(event, UA_CONTEXT)
        assert context["useragentFamily"] == salted("Chrome", "md5")
        assert context["osFamily"] == "Mac OS X"


async def test_pii_path_to_an_object_makes_an_enrichment_failure(folder: Path, make_enricher: Make):
    rule = {"json": {"field": "contexts", "schemaCriterion": USER, "jsonPath": "$"}}
    write_config(folder, "pii_enrichment_config", pii_parameters(rule), version="2-0-0", vendor=SPE)
    message = get_payload({**PAGE_VIEW, "co": contexts(sdj(USER, {"id": "alice"}))})

    outcome = await (await make_enricher()).process(message)

    assert outcome.good == []
    [row] = outcome.bad
    [failure] = row["data"]["failure"]["messages"]
    assert failure == {
        "enrichment": {
            "schemaKey": f"iglu:{SPE}/pii_enrichment_config/jsonschema/2-0-0",
            "identifier": "pii_enrichment_config",
        },
        "message": f"contexts: {USER}: $: got an object, expected a string to pseudonymise",
    }
    assert row["data"]["failure"]["messages"][0]["enrichment"]["identifier"] == (
        "pii_enrichment_config"
    )


async def test_pii_anonymous_only_pseudonymises_only_anonymous_requests(
    folder: Path, make_enricher: Make
):
    parameters = pii_parameters({"pojo": {"field": "user_id"}})
    write_config(
        folder, "pii_enrichment_config", parameters, version="2-0-1", vendor=SPE, anonymousOnly=True
    )
    enricher = await make_enricher()

    identified = await raw_event(enricher, get_payload({**PAGE_VIEW, "uid": "alice"}))
    anonymous = await raw_event(
        enricher, get_payload({**PAGE_VIEW, "uid": "alice"}, headers=["SP-Anonymous: *"])
    )

    assert identified["user_id"] == "alice"
    assert anonymous["user_id"] == salted("alice")


def test_json_path_reads_the_forms_pii_configs_use():
    assert jsonpaths.parse("$.data.['email', 'ip_opt']") == (
        ("names", ("data",)),
        ("names", ("email", "ip_opt")),
    )
    assert jsonpaths.parse("$.items[*].id") == (
        ("names", ("items",)),
        ("all", None),
        ("names", ("id",)),
    )
    assert jsonpaths.parse('$["a b"][0]') == (("names", ("a b",)), ("index", 0))


# All together


async def test_all_enrichments_together_give_a_line_the_sdk_reads(
    folder: Path, maxmind: Path, make_enricher: Make
):
    write_config(folder, "ua_parser_config", {})
    write_config(folder, "referer_parser", {"internalDomains": []})
    write_config(folder, "campaign_attribution", {"fields": CAMPAIGN_FIELDS}, version="1-0-1")
    write_config(
        folder, "event_fingerprint_config", {"excludeParameters": [], "hashAlgorithm": "MD5"}
    )
    write_config(folder, "cookie_extractor_config", {"cookies": ["sp"]})
    write_config(
        folder, "http_header_extractor_config", {"headersPattern": "X-Acme-.*"}, vendor=SPE
    )
    write_config(folder, "ip_lookups", ip_lookups_parameters(maxmind), version="2-0-0")
    write_config(folder, "anon_ip", {"anonOctets": 1})
    write_config(
        folder,
        "pii_enrichment_config",
        pii_parameters({"pojo": {"field": "user_id"}}),
        version="2-0-0",
        vendor=SPE,
    )
    message = get_payload(
        {
            **PAGE_VIEW,
            "url": "https://shop.test/boots?utm_source=news&gclid=g1",
            "refr": "https://www.google.com/search?q=boots",
            "ua": CHROME_MAC,
            "uid": "alice",
        },
        headers=["Cookie: sp=abc", "X-Acme-Tenant: blue"],
    )

    event = await good_event(await make_enricher(), message)

    assert (event["mkt_source"], event["mkt_clickid"]) == ("news", "g1")
    assert (event["refr_medium"], event["refr_source"], event["refr_term"]) == (
        "search",
        "Google",
        "boots",
    )
    assert (event["geo_country"], event["user_ipaddress"]) == ("GB", "203.0.113.x")
    assert event["user_id"] == salted("alice")
    assert len(event["event_fingerprint"]) == 32
    assert event["contexts_org_ietf_http_cookie_1"] == [{"name": "sp", "value": "abc"}]
    assert event["contexts_org_ietf_http_header_1"] == [{"name": "X-Acme-Tenant", "value": "blue"}]
    assert (
        event["contexts_com_snowplowanalytics_snowplow_ua_parser_context_1"][0]["useragentFamily"]
        == "Chrome"
    )


# Loading


def test_enrichments_run_in_the_fixed_order_whatever_the_file_names(folder: Path, maxmind: Path):
    write_config(
        folder,
        "pii_enrichment_config",
        pii_parameters(),
        version="2-0-0",
        vendor=SPE,
        file="a.json",
    )
    write_config(folder, "anon_ip", {"anonOctets": 1}, file="b.json")
    write_config(
        folder, "ip_lookups", ip_lookups_parameters(maxmind), version="2-0-0", file="c.json"
    )
    write_config(folder, "campaign_attribution", {"fields": CAMPAIGN_FIELDS}, file="d.json")
    write_config(folder, "referer_parser", {"internalDomains": []}, file="e.json")
    write_config(folder, "ua_parser_config", {}, file="f.json")

    loaded = enrichments.load_enrichments(folder)
    enrichments.close_enrichments(loaded)

    assert [type(e).__name__ for e in loaded] == [
        "UserAgentParser",
        "RefererParser",
        "CampaignAttribution",
        "IpLookups",
        "IpAnonymisation",
        "PiiPseudonymisation",
    ]


def test_every_supported_config_version_has_its_config_schema():
    for kind in enrichments.KINDS:
        for version in kind.versions:
            key = loading.schemakeys.SchemaKey.parse(
                f"iglu:{kind.vendor}/{kind.name}/jsonschema/{version}"
            )
            assert loading._config_schema(key)["self"]["name"] == kind.name


def test_config_problems_are_all_listed_with_file_and_path(folder: Path, tmp_path: Path):
    write_config(
        folder, "ua_parser_config", {"uri": "https://x.test/", "databse": "r.yaml"}, version="1-0-1"
    )
    write_config(folder, "anon_ip", {"anonOctets": 7})
    write_config(
        folder, "event_fingerprint_config", {"excludeParameters": [], "hashAlgorithm": "SHA256"}
    )
    write_config(folder, "http_header_extractor_config", {"headersPattern": "x-(acme"}, vendor=SPE)
    bad_rule = {"json": {"field": "contexts", "schemaCriterion": USER, "jsonPath": "$..id"}}
    write_config(
        folder, "pii_enrichment_config", pii_parameters(bad_rule), version="2-0-0", vendor=SPE
    )
    write_config(
        folder,
        "ip_lookups",
        {"geo": {"database": "City.mmdb", "uri": str(tmp_path)}},
        version="2-0-0",
    )
    (folder / "broken.json").write_text("{not json")

    with pytest.raises(enrichments.EnrichmentConfigError) as caught:
        enrichments.load_enrichments(folder)

    city = tmp_path / "City.mmdb"
    assert caught.value.problems == [
        "anon_ip.json: data.parameters.anonOctets: expected a number <= 4, got integer 7",
        "broken.json: not valid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
        'event_fingerprint_config.json: data.parameters.hashAlgorithm: expected one of "MD5", '
        'got string "SHA256"',
        'ua_parser_config.json: data.parameters: got unexpected property "databse", expected '
        "only the declared properties",
        'ua_parser_config.json: data.parameters: property "uri" requires "database", missing',
        "http_header_extractor_config.json: data.parameters.headersPattern: not a valid regular "
        "expression: missing ), unterminated subpattern at position 2",
        f"ip_lookups.json: data.parameters.geo.database: the database {str(city)!r} does not "
        "exist or is not a file",
        "pii_enrichment_config.json: data.parameters.pii[0].json.jsonPath: column 3 of '$..id': "
        "expected a property name",
    ]
    assert str(caught.value).startswith("8 problems in the enrichment configs:\n  anon_ip.json: ")


def test_disabled_config_is_skipped_even_when_its_database_is_remote(folder: Path):
    parameters = {"geo": {"database": "GeoLite2-City.mmdb", "uri": "http://assets.test/maxmind"}}
    write_config(folder, "ip_lookups", parameters, version="2-0-0", enabled=False)
    write_config(folder, "anon_ip", {"anonOctets": 2})

    loaded = enrichments.load_enrichments(folder)

    assert [type(e).__name__ for e in loaded] == ["IpAnonymisation"]


def test_remote_ip_database_of_an_enabled_config_is_a_problem(folder: Path):
    parameters = {"geo": {"database": "GeoLite2-City.mmdb", "uri": "http://assets.test/maxmind"}}
    write_config(folder, "ip_lookups", parameters, version="2-0-0")

    with pytest.raises(enrichments.EnrichmentConfigError) as caught:
        enrichments.load_enrichments(folder)

    assert caught.value.problems == [
        "ip_lookups.json: data.parameters.geo.uri: got 'http://assets.test/maxmind': remote "
        "databases are not downloaded; download GeoLite2-City.mmdb and set uri to the local "
        "folder that holds it"
    ]


def test_unknown_enrichment_name_is_an_error_naming_the_file(folder: Path):
    write_config(folder, "moon_phase_config", {}, file="moon.json")

    with pytest.raises(enrichments.EnrichmentConfigError) as caught:
        enrichments.load_enrichments(folder)

    [problem] = caught.value.problems
    assert problem.startswith(
        f"moon.json: schema: got iglu:{SP}/moon_phase_config/jsonschema/1-0-0, which names no "
        "known enrichment; expected one of ua_parser_config, referer_parser"
    )


def test_unsupported_version_names_the_supported_ones(folder: Path):
    write_config(folder, "anon_ip", {"anonOctets": 1}, version="3-0-0")

    with pytest.raises(enrichments.EnrichmentConfigError) as caught:
        enrichments.load_enrichments(folder)

    assert caught.value.problems == [
        f"anon_ip.json: schema: got iglu:{SP}/anon_ip/jsonschema/3-0-0, expected one of "
        f"iglu:{SP}/anon_ip/jsonschema/1-0-0, iglu:{SP}/anon_ip/jsonschema/1-0-1"
    ]


def test_upstream_enrichment_not_run_here_is_skipped_when_disabled_and_an_error_when_enabled(
    folder: Path,
):
    write_config(folder, "javascript_script_config", {"script": "ZnVuY3Rpb24="}, enabled=False)
    assert enrichments.load_enrichments(folder) == []

    write_config(folder, "javascript_script_config", {"script": "ZnVuY3Rpb24="})
    with pytest.raises(enrichments.EnrichmentConfigError) as caught:
        enrichments.load_enrichments(folder)

    assert caught.value.problems == [
        "javascript_script_config.json: schema: the javascript_script_config enrichment is not "
        "available in this Mini; set data.enabled to false or remove the config"
    ]


def test_only_one_instance_of_an_enrichment_may_be_enabled(folder: Path):
    write_config(folder, "anon_ip", {"anonOctets": 1}, file="a.json")
    write_config(folder, "anon_ip", {"anonOctets": 2}, file="b.json")
    write_config(folder, "anon_ip", {"anonOctets": 3}, file="c.json", enabled=False)

    with pytest.raises(enrichments.EnrichmentConfigError) as caught:
        enrichments.load_enrichments(folder)

    assert caught.value.problems == [
        "b.json: data.enabled: a.json already enables anon_ip; only one instance of each "
        "enrichment may be enabled"
    ]


def test_combined_list_form_is_read_and_its_problems_name_the_item(folder: Path):
    items = [
        {
            "schema": f"iglu:{SP}/anon_ip/jsonschema/1-0-0",
            "data": {"vendor": SP, "name": "anon_ip", "enabled": True,
                     "parameters": {"anonOctets": 1}},
        },
        {
            "schema": f"iglu:{SP}/cookie_extractor_config/jsonschema/1-0-0",
            "data": {"vendor": SP, "name": "cookie_extractor_config", "enabled": True,
                     "parameters": {"cookies": "sp"}},
        },
    ]  # fmt: skip
    combined = {"schema": f"iglu:{SP}/enrichments/jsonschema/1-0-0", "data": items}
    (folder / "all.json").write_text(json.dumps(combined))

    with pytest.raises(enrichments.EnrichmentConfigError) as caught:
        enrichments.load_enrichments(folder)
    items[1]["data"]["parameters"]["cookies"] = ["sp"]
    (folder / "all.json").write_text(json.dumps(combined))
    loaded = enrichments.load_enrichments(folder)

    assert caught.value.problems == [
        'all.json: data[1].data.parameters.cookies: expected array, got string "sp"'
    ]
    assert [type(e).__name__ for e in loaded] == ["CookieExtractor", "IpAnonymisation"]


async def test_a_folder_in_upstreams_style_loads_and_enriches_without_downloading(
    schema_folder: Path,
):
    # Remote uris, disabled configs with remote databases, and upstream enrichments this Mini
    # does not run: the shape of the default folders shipped with upstream's Mini.
    folder = Path(__file__).parent / "data" / "upstream_style"
    loaded = enrichments.load_enrichments(folder)
    enricher = processing.Enricher(resolver=resolving.Resolver([]), enrichments=loaded)
    message = get_payload(
        {
            **PAGE_VIEW,
            "url": "https://shop.test/?utm_source=news",
            "refr": "https://duckduckgo.com/?q=boots",
            "ua": CHROME_MAC,
        }
    )

    event = await raw_event(enricher, message)
    await enricher.resolver.close()

    assert [type(e).__name__ for e in loaded] == [
        "UserAgentParser",
        "RefererParser",
        "CampaignAttribution",
        "EventFingerprint",
    ]
    assert (event["refr_source"], event["refr_term"], event["mkt_source"]) == (
        "DuckDuckGo",
        "boots",
        "news",
    )
    assert derived(event, UA_CONTEXT)[0]["useragentFamily"] == "Chrome"
    assert event["user_ipaddress"] == "203.0.113.9"


def test_missing_folder_is_a_config_error(tmp_path: Path):
    with pytest.raises(enrichments.EnrichmentConfigError) as caught:
        enrichments.load_enrichments(tmp_path / "nowhere")

    assert caught.value.problems == [f"{tmp_path / 'nowhere'}: not a folder of enrichment configs"]


# Wiring into the local Mini


def test_local_command_takes_an_enrichments_folder(folder: Path, monkeypatch: pytest.MonkeyPatch):
    args = cli.build_parser().parse_args(["local", "--enrichments", str(folder)])
    monkeypatch.setenv("SNOWPLOW_MINI_ENRICHMENTS", "/from/environment")

    settings = local.LocalSettings(**cli._given(args, "enrichments"))

    assert args.enrichments == str(folder)
    assert settings.enrichments == folder
    assert local.LocalSettings().enrichments == Path("/from/environment")


async def test_local_mini_runs_the_configured_enrichments(folder: Path, schema_folder: Path):
    write_config(folder, "anon_ip", {"anonOctets": 1})
    settings = local.LocalSettings(enrichments=folder, schemas=schema_folder)

    mini = local.LocalMini(settings)
    try:
        outcome = await mini.enricher.process(get_payload(PAGE_VIEW))
    finally:
        await mini.resolver.close()

    assert enriched.from_tsv(outcome.good[0])["user_ipaddress"] == "203.0.113.x"


def test_local_command_reports_config_problems_and_exits_2(
    folder: Path, capsys: pytest.CaptureFixture[str]
):
    write_config(folder, "anon_ip", {"anonOctets": 0})

    code = cli.main(["local", "--port", "0", "--enrichments", str(folder)])

    assert code == 2
    assert "anon_ip.json: data.parameters.anonOctets: expected a number >= 1, got integer 0" in (
        capsys.readouterr().err
    )
