"""The resolver against real HTTP registries on 127.0.0.1 and local folders."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import pytest

from snowplow_pipeline.iglu import registries
from snowplow_pipeline.iglu.resolving import (
    ResolutionError,
    Resolver,
    ResolverConfigError,
    RetryPolicy,
)
from snowplow_pipeline.iglu.schemakeys import SchemaKey
from tests.helpers.iglu_registry import StaticIgluRegistry, iglu_schema

URI = "iglu:com.acme/checkout/jsonschema/1-0-0"
KEY = SchemaKey.parse(URI)
SCHEMA = iglu_schema(URI, {"type": "object"})
FAST = RetryPolicy(retry_delays_seconds=(0.01, 0.01, 0.01), backoff_first_seconds=5.0)
PAYLOAD_DATA = SchemaKey.parse("iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4")
ISO_MILLIS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def http(name: str, url: str, **options: object) -> registries.HttpRegistry:
    return registries.HttpRegistry(name=name, uri=url, **options)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_for(predicate, *, timeout_seconds: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


def repository(name: str, priority: float, prefixes: list[str], connection: dict) -> dict:
    return {
        "name": name,
        "priority": priority,
        "vendorPrefixes": prefixes,
        "connection": connection,
    }


# --- order ------------------------------------------------------------------------------------


def test_lookup_order_is_embedded_then_vendor_prefix_then_local_then_priority(tmp_path):
    config = {
        "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
        "data": {
            "cacheSize": 10,
            "repositories": [
                repository("http-p0", 0, [], {"http": {"uri": "http://127.0.0.1:9"}}),
                repository("local-p9", 9, [], {"embedded": {"path": str(tmp_path)}}),
                repository(
                    "acme-http-p5", 5, ["com.acme"], {"http": {"uri": "http://127.0.0.1:9"}}
                ),
                repository("acme-local-p7", 7, ["com.ac"], {"embedded": {"path": str(tmp_path)}}),
                repository("other-p-1", -1, ["org.other"], {"http": {"uri": "http://127.0.0.1:9"}}),
                repository("local-p2", 2, [], {"embedded": {"path": str(tmp_path)}}),
            ],
        },
    }

    resolver = Resolver.from_config(config, extra_local_folders=[tmp_path])

    assert [registry.name for registry in resolver.lookup_order(KEY)] == [
        "Embedded snowplow-mini",
        "acme-local-p7",
        "acme-http-p5",
        f"Local folder {tmp_path}",
        "local-p2",
        "local-p9",
        "other-p-1",
        "http-p0",
    ]


def test_default_resolver_asks_embedded_then_iglu_central():
    resolver = Resolver.default()

    order = resolver.lookup_order(KEY)

    assert [registry.name for registry in order] == ["Embedded snowplow-mini", "Iglu Central"]
    assert order[1].uri == "http://iglucentral.com"  # type: ignore[attr-defined]
    assert order[1].priority == 1


async def test_own_embedded_registry_answers_before_any_configured_registry(
    static_iglu_registry,
):
    static_iglu_registry.add(PAYLOAD_DATA.uri, {"not": "ours"})
    resolver = Resolver([http("Static", static_iglu_registry.url)])

    schema = await resolver.lookup(PAYLOAD_DATA)

    assert schema["self"]["name"] == "payload_data"
    assert static_iglu_registry.requests == []
    await resolver.close()


# --- HTTP registry ----------------------------------------------------------------------------


async def test_schema_is_fetched_from_a_static_http_registry(static_iglu_registry):
    static_iglu_registry.add(URI, SCHEMA)

    async with Resolver([http("Static", static_iglu_registry.url)]) as resolver:
        schema = await resolver.lookup(KEY)

    assert schema == SCHEMA
    assert [r.path for r in static_iglu_registry.requests] == [f"/schemas/{KEY.path}"]


async def test_iglu_server_uri_ending_in_api_is_supported_with_apikey_header(tmp_path):
    async with StaticIgluRegistry(tmp_path, prefix="/api") as server:
        server.add(URI, SCHEMA)
        registry = http("Iglu Server", server.url, apikey="secret-key")
        async with Resolver([registry]) as resolver:
            schema = await resolver.lookup(KEY)

    assert server.url.endswith("/api")
    assert schema == SCHEMA
    assert [r.path for r in server.requests] == [f"/api/schemas/{KEY.path}"]
    assert server.requests[0].headers["apikey"] == "secret-key"


async def test_no_apikey_header_is_sent_without_an_apikey(static_iglu_registry):
    static_iglu_registry.add(URI, SCHEMA)

    async with Resolver([http("Static", static_iglu_registry.url)]) as resolver:
        await resolver.lookup(KEY)

    assert "apikey" not in {h.lower() for h in static_iglu_registry.requests[0].headers}


async def test_missing_schema_fails_with_not_found_from_every_registry(static_iglu_registry):
    async with Resolver([http("Static", static_iglu_registry.url)], retry=FAST) as resolver:
        with pytest.raises(ResolutionError) as caught:
            await resolver.lookup(KEY)

    error = caught.value
    assert error.is_not_found
    assert [(h["repository"], h["errors"], h["attempts"]) for h in error.lookup_history] == [
        ("Embedded snowplow-mini", [{"error": "NotFound"}], 1),
        ("Static", [{"error": "NotFound"}], 1),
    ]
    assert all(ISO_MILLIS_Z.match(h["lastAttempt"]) for h in error.lookup_history)
    assert error.to_json() == {"error": "ResolutionError", "lookupHistory": error.lookup_history}
    assert str(error) == (
        f"{URI} could not be resolved (Embedded snowplow-mini: NotFound; Static: NotFound)"
    )


async def test_server_error_is_retried_three_more_times_then_reported(static_iglu_registry):
    static_iglu_registry.add(URI, SCHEMA)
    static_iglu_registry.fail(URI, 500, 502, 503, 500)

    async with Resolver([http("Static", static_iglu_registry.url)], retry=FAST) as resolver:
        with pytest.raises(ResolutionError) as caught:
            await resolver.lookup(KEY)

    static_history = caught.value.lookup_history[1]
    assert static_history["attempts"] == 4
    assert [error["error"] for error in static_history["errors"]] == ["RepoFailure"]
    assert static_history["errors"][0]["message"] == (
        f"GET {static_iglu_registry.url}/schemas/{KEY.path} answered HTTP 500: injected failure"
    )
    assert not caught.value.is_not_found
    assert len(static_iglu_registry.requests) == 4


async def test_transient_server_error_is_overcome_by_a_retry(static_iglu_registry):
    static_iglu_registry.add(URI, SCHEMA)
    static_iglu_registry.fail(URI, 503, 500)

    async with Resolver([http("Static", static_iglu_registry.url)], retry=FAST) as resolver:
        schema = await resolver.lookup(KEY)

    assert schema == SCHEMA
    assert len(static_iglu_registry.requests) == 3


async def test_refused_apikey_is_a_client_failure_without_retries(static_iglu_registry):
    static_iglu_registry.fail(URI, 401)

    async with Resolver([http("Static", static_iglu_registry.url)], retry=FAST) as resolver:
        with pytest.raises(ResolutionError) as caught:
            await resolver.lookup(KEY)

    history = caught.value.lookup_history[1]
    assert history["attempts"] == 1
    assert history["errors"][0]["error"] == "ClientFailure"
    assert "HTTP 401" in history["errors"][0]["message"]


async def test_invalid_json_from_a_registry_is_an_error_not_a_schema(static_iglu_registry):
    path = static_iglu_registry.add(URI, SCHEMA)
    path.write_text("<html>maintenance</html>")

    async with Resolver([http("Static", static_iglu_registry.url)], retry=FAST) as resolver:
        with pytest.raises(ResolutionError) as caught:
            await resolver.lookup(KEY)

    message = caught.value.lookup_history[1]["errors"][0]["message"]
    assert message.endswith("answered HTTP 200 with invalid JSON: <html>maintenance</html>")


async def test_registry_that_never_answers_times_out(static_iglu_registry):
    static_iglu_registry.hold()
    registry = http("Slow", static_iglu_registry.url, total_timeout_seconds=0.2)
    retry = RetryPolicy(retry_delays_seconds=(), attempts_budget_seconds=5.0)

    async with Resolver([registry], retry=retry) as resolver:
        with pytest.raises(ResolutionError) as caught:
            await resolver.lookup(KEY)

    assert caught.value.lookup_history[1]["errors"] == [
        {"error": "RepoFailure", "message": f"GET {registry.url_for(KEY)} timed out"}
    ]


async def test_retries_stop_at_the_time_budget(static_iglu_registry):
    static_iglu_registry.hold()
    retry = RetryPolicy(retry_delays_seconds=(0.01,) * 3, attempts_budget_seconds=0.3)

    async with Resolver([http("Slow", static_iglu_registry.url)], retry=retry) as resolver:
        started = time.monotonic()
        with pytest.raises(ResolutionError) as caught:
            await resolver.lookup(KEY)

    assert time.monotonic() - started < 1.5
    assert caught.value.lookup_history[1]["errors"] == [
        {"error": "RepoFailure", "message": "Slow: no answer within 0.3 s"}
    ]


# --- unreachable registries -------------------------------------------------------------------


async def test_unreachable_registry_fails_within_seconds_and_is_not_waited_for_again():
    registry = http("Offline", f"http://127.0.0.1:{closed_port()}")
    other_key = SchemaKey.parse("iglu:com.acme/other/jsonschema/1-0-0")

    async with Resolver([registry]) as resolver:
        started = time.monotonic()
        with pytest.raises(ResolutionError) as first:
            await resolver.lookup(KEY)
        first_seconds = time.monotonic() - started

        started = time.monotonic()
        with pytest.raises(ResolutionError) as second:
            await resolver.lookup(other_key)
        second_seconds = time.monotonic() - started

    assert first_seconds < 2.5
    assert second_seconds < 0.1
    assert first.value.lookup_history[1]["attempts"] == 4
    assert first.value.lookup_history[1]["errors"][0]["error"] == "RepoFailure"
    assert second.value.lookup_history[1]["attempts"] == 0
    assert second.value.lookup_history[1]["errors"][0]["message"].startswith(
        "not asked while failing: GET http://127.0.0.1:"
    )


async def test_failing_registry_is_probed_once_after_its_backoff(static_iglu_registry):
    static_iglu_registry.add(URI, SCHEMA)
    static_iglu_registry.fail(URI, 500, 500, 500, 500, 500)
    clock = FakeClock()

    async with Resolver(
        [http("Static", static_iglu_registry.url)], retry=FAST, clock=clock
    ) as resolver:
        with pytest.raises(ResolutionError):
            await resolver.lookup(KEY)
        clock.advance(4.9)
        with pytest.raises(ResolutionError):
            await resolver.lookup(KEY)
        requests_during_backoff = len(static_iglu_registry.requests)
        clock.advance(0.2)
        with pytest.raises(ResolutionError) as probed:
            await resolver.lookup(KEY)
        requests_after_probe = len(static_iglu_registry.requests)
        clock.advance(10.1)
        schema = await resolver.lookup(KEY)

    assert requests_during_backoff == 4
    assert requests_after_probe == 5
    assert probed.value.lookup_history[1]["attempts"] == 5
    assert schema == SCHEMA


async def test_registry_recovered_to_not_found_reports_plain_not_found(static_iglu_registry):
    static_iglu_registry.fail(URI, 500, 500, 500, 500)
    clock = FakeClock()

    async with Resolver(
        [http("Static", static_iglu_registry.url)], retry=FAST, clock=clock
    ) as resolver:
        with pytest.raises(ResolutionError):
            await resolver.lookup(KEY)
        clock.advance(5.1)
        with pytest.raises(ResolutionError) as caught:
            await resolver.lookup(KEY)

    assert caught.value.is_not_found
    assert caught.value.lookup_history[1]["errors"] == [{"error": "NotFound"}]
    assert caught.value.lookup_history[1]["attempts"] == 5


# --- caching ----------------------------------------------------------------------------------


async def test_found_schema_is_cached(static_iglu_registry):
    static_iglu_registry.add(URI, SCHEMA)

    async with Resolver([http("Static", static_iglu_registry.url)]) as resolver:
        first = await resolver.lookup(KEY)
        second = await resolver.lookup(KEY)

    assert first is second
    assert len(static_iglu_registry.requests) == 1


async def test_not_found_is_cached_too(static_iglu_registry):
    async with Resolver([http("Static", static_iglu_registry.url)]) as resolver:
        for _ in range(3):
            with pytest.raises(ResolutionError):
                await resolver.lookup(KEY)

    assert len(static_iglu_registry.requests) == 1


async def test_cache_entries_expire_after_the_ttl(static_iglu_registry):
    clock = FakeClock()
    registry = http("Static", static_iglu_registry.url)

    async with Resolver([registry], cache_ttl_seconds=30, clock=clock) as resolver:
        with pytest.raises(ResolutionError):
            await resolver.lookup(KEY)
        static_iglu_registry.add(URI, SCHEMA)
        clock.advance(29.9)
        with pytest.raises(ResolutionError):
            await resolver.lookup(KEY)
        clock.advance(0.2)
        schema = await resolver.lookup(KEY)
        clock.advance(30.1)
        await resolver.lookup(KEY)

    assert schema == SCHEMA
    assert len(static_iglu_registry.requests) == 3


async def test_null_ttl_keeps_entries_until_evicted(static_iglu_registry):
    static_iglu_registry.add(URI, SCHEMA)
    clock = FakeClock()
    registry = http("Static", static_iglu_registry.url)

    async with Resolver([registry], cache_ttl_seconds=None, clock=clock) as resolver:
        await resolver.lookup(KEY)
        clock.advance(10**9)
        await resolver.lookup(KEY)

    assert len(static_iglu_registry.requests) == 1


async def test_least_recently_used_entry_is_evicted_beyond_cache_size(static_iglu_registry):
    keys = [SchemaKey.parse(f"iglu:com.acme/e{n}/jsonschema/1-0-0") for n in range(3)]
    for key in keys:
        static_iglu_registry.add(key.uri, iglu_schema(key.uri, {}))

    async with Resolver([http("Static", static_iglu_registry.url)], cache_size=2) as resolver:
        for key in (keys[0], keys[1], keys[0], keys[2], keys[0], keys[1]):
            await resolver.lookup(key)

    fetched = [r.path.rsplit("/", 3)[1] for r in static_iglu_registry.requests]
    assert fetched == ["e0", "e1", "e2", "e1"]


async def test_cache_size_zero_disables_caching(static_iglu_registry):
    static_iglu_registry.add(URI, SCHEMA)

    async with Resolver([http("Static", static_iglu_registry.url)], cache_size=0) as resolver:
        await resolver.lookup(KEY)
        await resolver.lookup(KEY)

    assert len(static_iglu_registry.requests) == 2


# --- concurrency ------------------------------------------------------------------------------


async def test_concurrent_lookups_of_one_key_share_one_request(static_iglu_registry):
    static_iglu_registry.add(URI, SCHEMA)
    static_iglu_registry.hold()

    async with Resolver([http("Static", static_iglu_registry.url)]) as resolver:
        lookups = [asyncio.create_task(resolver.lookup(KEY)) for _ in range(20)]
        await wait_for(lambda: len(static_iglu_registry.requests) == 1)
        static_iglu_registry.release()
        schemas = await asyncio.gather(*lookups)

    assert all(schema == SCHEMA for schema in schemas)
    assert len(static_iglu_registry.requests) == 1


async def test_cancelled_caller_does_not_cancel_the_shared_lookup(static_iglu_registry):
    static_iglu_registry.add(URI, SCHEMA)
    static_iglu_registry.hold()

    async with Resolver([http("Static", static_iglu_registry.url)]) as resolver:
        impatient = asyncio.create_task(resolver.lookup(KEY))
        patient = asyncio.create_task(resolver.lookup(KEY))
        await wait_for(lambda: len(static_iglu_registry.requests) == 1)
        impatient.cancel()
        static_iglu_registry.release()
        schema = await patient

    assert impatient.cancelled()
    assert schema == SCHEMA


# --- local folders and config files -----------------------------------------------------------


@pytest.mark.parametrize("layout", ["with-schemas-subfolder", "vendor-folders-directly"])
async def test_local_folder_is_read_in_either_layout(tmp_path, layout):
    root = tmp_path / "schemas" if layout == "with-schemas-subfolder" else tmp_path
    file = root / KEY.path
    file.parent.mkdir(parents=True)
    file.write_text(json.dumps(SCHEMA))

    async with Resolver.default(extra_local_folders=[tmp_path]) as resolver:
        schema = await resolver.lookup(KEY)

    assert schema == SCHEMA


async def test_unreadable_schema_file_is_a_client_failure(tmp_path):
    file = tmp_path / "schemas" / KEY.path
    file.parent.mkdir(parents=True)
    file.write_text("{not json")
    folder = registries.EmbeddedRegistry(name="Mine", path=tmp_path)

    async with Resolver([folder], retry=FAST) as resolver:
        with pytest.raises(ResolutionError) as caught:
            await resolver.lookup(KEY)

    error = caught.value.lookup_history[1]["errors"][0]
    assert error["error"] == "ClientFailure"
    assert error["message"].startswith(f"{file} is not valid JSON")


def test_missing_extra_local_folder_is_a_config_error(tmp_path):
    with pytest.raises(ResolverConfigError) as caught:
        Resolver.default(extra_local_folders=[tmp_path / "nope"])

    assert caught.value.problems == [
        f'extra_local_folders[0]: got "{tmp_path / "nope"}", expected an existing folder'
    ]


async def test_config_file_embedded_path_is_relative_to_the_file(tmp_path):
    (tmp_path / "iglu" / "schemas" / KEY.path).parent.mkdir(parents=True)
    (tmp_path / "iglu" / "schemas" / KEY.path).write_text(json.dumps(SCHEMA))
    config = {
        "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-1",
        "data": {
            "cacheSize": 500,
            "repositories": [repository("Mine", 0, [], {"embedded": {"path": "iglu"}})],
        },
    }
    (tmp_path / "resolver.json").write_text(json.dumps(config))

    async with Resolver.from_file(tmp_path / "resolver.json") as resolver:
        schema = await resolver.lookup(KEY)

    assert schema == SCHEMA


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ResolverConfigError, match=r"resolver\.json: cannot read"):
        Resolver.from_file(tmp_path / "resolver.json")
