"""The enrich service: its handler without sockets, and ``snowplow-mini enrich`` on a real nsqd."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from snowplow_pipeline import badrows, enriched, nsq, topics
from snowplow_pipeline.enrich import processing, service
from snowplow_pipeline.enrich import settings as enrich_settings
from tests.components.nsq_server import NsqdServer
from tests.components.processes import ManagedProcess, free_port, wait_until
from tests.enrich.conftest import contexts, get_payload, sdj
from tests.nsq.conftest import FAST, eventually

USER = "iglu:com.acme/user/jsonschema/1-0-0"
SNOWPLOW_MINI = Path(sys.executable).with_name("snowplow-mini")


def page_view(event_id: str) -> bytes:
    return get_payload({"e": "pv", "p": "web", "tv": "t", "aid": "shop", "eid": event_id})


def invalid_entity(event_id: str) -> bytes:
    user = contexts(sdj(USER, {"id": "far-too-long-an-id"}))
    return get_payload({"e": "pv", "p": "web", "tv": "t", "eid": event_id, "co": user})


class RecordingPublisher:
    """A ``topics.Publisher`` that keeps what it was given, or refuses while ``is_down``."""

    def __init__(self) -> None:
        self.published: dict[str, list[bytes]] = {}
        self.is_down = False

    async def publish(self, topic: str, messages: Sequence[bytes]) -> None:
        if self.is_down:
            raise topics.PublishError("nsqd is down")
        self.published.setdefault(topic, []).extend(messages)

    async def is_healthy(self) -> bool:
        return not self.is_down


class BrokenEnricher(processing.Enricher):
    async def process(self, message: bytes) -> processing.Outcome:
        raise KeyError("a defect")


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


def make_handler(
    enricher: processing.Enricher, publisher: RecordingPublisher, **settings: Any
) -> service.EnrichHandler:
    return service.EnrichHandler(
        enricher=enricher,
        publisher=publisher,
        settings=enrich_settings.EnrichSettings(**settings),
        metrics=service.EnrichMetrics.create(),
    )


# --- the handler, without sockets ------------------------------------------------------------


async def test_handler_publishes_good_lines_and_bad_rows_to_their_topics(
    enricher: processing.Enricher, publisher: RecordingPublisher
) -> None:
    handler = make_handler(enricher, publisher)

    await handler(page_view("8f4bb7c0-1e8c-4a3c-9f1a-0d9e0c0f0001"))
    await handler(invalid_entity("8f4bb7c0-1e8c-4a3c-9f1a-0d9e0c0f0002"))

    [line] = publisher.published[topics.ENRICHED_EVENTS]
    assert enriched.from_tsv(line.decode())["event_id"] == "8f4bb7c0-1e8c-4a3c-9f1a-0d9e0c0f0001"
    [row] = publisher.published[topics.BAD_ENRICHED_EVENTS]
    assert badrows.parse(row)["schema"] == badrows.SCHEMA_VIOLATIONS
    assert handler.metrics.events.labels("good")._value.get() == 1
    assert handler.metrics.events.labels("bad")._value.get() == 1


async def test_publish_failure_raises_so_that_the_payload_is_retried(
    enricher: processing.Enricher, publisher: RecordingPublisher
) -> None:
    handler = make_handler(enricher, publisher)
    publisher.is_down = True

    with pytest.raises(topics.PublishError):
        await handler(page_view("8f4bb7c0-1e8c-4a3c-9f1a-0d9e0c0f0003"))

    assert handler.metrics.failures.labels("publish")._value.get() == 1


async def test_enriched_event_too_large_for_nsq_becomes_a_size_violation(
    enricher: processing.Enricher, publisher: RecordingPublisher
) -> None:
    handler = make_handler(enricher, publisher, nsq={"max_message_bytes": 2000})
    message = get_payload({"e": "pv", "p": "web", "tv": "t", "page": "x" * 1900})

    await handler(message)

    assert topics.ENRICHED_EVENTS not in publisher.published
    [row] = map(badrows.parse, publisher.published[topics.BAD_ENRICHED_EVENTS])
    assert row["schema"] == badrows.SIZE_VIOLATION
    assert row["data"]["failure"]["maximumAllowedSizeBytes"] == 2000
    assert row["data"]["failure"]["actualSizeBytes"] > 2000
    assert row["data"]["failure"]["expectation"] == "an enriched event fits in one NSQ message"
    assert len(row["data"]["payload"]) == 200


async def test_payload_that_keeps_failing_becomes_a_generic_error_after_the_last_attempt(
    publisher: RecordingPublisher, enricher: processing.Enricher
) -> None:
    handler = make_handler(
        BrokenEnricher(resolver=enricher.resolver), publisher, max_attempts_on_error=3
    )
    message = page_view("8f4bb7c0-1e8c-4a3c-9f1a-0d9e0c0f0004")

    for _ in range(2):
        with pytest.raises(KeyError):
            await handler(message)
    await handler(message)

    [row] = map(badrows.parse, publisher.published[topics.BAD_ENRICHED_EVENTS])
    assert row["schema"] == badrows.GENERIC_ERROR
    assert row["data"]["failure"]["errors"] == ["KeyError: 'a defect'"]
    assert base64.b64decode(row["data"]["payload"]) == message


def test_settings_name_the_variable_of_every_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOWPLOW_ENRICH_NSQ__MAX_IN_FLIGHT", "0")
    monkeypatch.setenv("SNOWPLOW_ENRICH_NSQ__CHANNEL", "no spaces")
    monkeypatch.setenv("SNOWPLOW_ENRICH_NSQ__NSQD_HTTP_ADDRESS", "nsqd-without-port")

    with pytest.raises(enrich_settings.InvalidSettingsError) as caught:
        enrich_settings.load(enrichments="/no/such/folder")

    assert [problem.split(":")[0] for problem in caught.value.problems] == [
        "SNOWPLOW_ENRICH_NSQ__NSQD_HTTP_ADDRESS",
        "SNOWPLOW_ENRICH_NSQ__CHANNEL",
        "SNOWPLOW_ENRICH_NSQ__MAX_IN_FLIGHT",
        "SNOWPLOW_ENRICH_ENRICHMENTS",
    ]


def test_enrich_with_wrong_settings_stops_at_start_up_naming_each_problem(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "SNOWPLOW_ENRICH_NSQ__MAX_IN_FLIGHT": "0",
        "SNOWPLOW_ENRICH_ENRICHMENTS": str(tmp_path / "missing"),
    }

    done = subprocess.run(
        [str(SNOWPLOW_MINI), "enrich", "--port", "70000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert [line.split(" (got ")[0] for line in done.stderr.splitlines()] == [
        "invalid enrich settings:",
        "  SNOWPLOW_ENRICH_PORT: Input should be less than or equal to 65535",
        "  SNOWPLOW_ENRICH_NSQ__MAX_IN_FLIGHT: Input should be greater than or equal to 1",
        "  SNOWPLOW_ENRICH_ENRICHMENTS: Value error, expected an existing folder",
    ]


def test_enrich_with_a_broken_enrichment_config_stops_before_connecting(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    env = {**os.environ, "SNOWPLOW_ENRICH_ENRICHMENTS": str(tmp_path)}

    done = subprocess.run(
        [str(SNOWPLOW_MINI), "enrich", "--nsqd-tcp-address", "127.0.0.1:1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "broken.json" in done.stderr
    assert "Consuming" not in done.stderr


# --- the real process on a real nsqd ---------------------------------------------------------


class EnrichProcess:
    """``snowplow-mini --log-format json enrich`` with its settings in the environment."""

    def __init__(self, *, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        env = {**env, "SNOWPLOW_ENRICH_PORT": str(self.port)}
        self.process = ManagedProcess(
            "enrich",
            [str(SNOWPLOW_MINI), "--log-format", "json", "enrich"],
            log_path=workdir / "enrich.log",
            env={**os.environ, **env},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process.start()
        wait_until(self.is_healthy, timeout_seconds=30, what="enrich /health", process=self.process)

    def is_healthy(self) -> bool:
        return self.health_status() == 200

    def health_status(self) -> int:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=2) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[-1])
        return 0.0

    def log_messages(self) -> list[str]:
        lines = self.process.log_path.read_text().splitlines()
        return [json.loads(line)["message"] for line in lines if line.startswith("{")]


@pytest.fixture
def resolver_file(tmp_path: Path, schema_folder: Path) -> Path:
    """A resolver config with only the local schema folder: no network is ever needed."""
    config = {
        "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
        "data": {
            "cacheSize": 100,
            "cacheTtl": 60,
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
    path = tmp_path / "resolver.json"
    path.write_text(json.dumps(config))
    return path


def anon_ip_folder(folder: Path) -> Path:
    folder.mkdir()
    config = {
        "schema": "iglu:com.snowplowanalytics.snowplow/anon_ip/jsonschema/1-0-0",
        "data": {
            "vendor": "com.snowplowanalytics.snowplow",
            "name": "anon_ip",
            "enabled": True,
            "parameters": {"anonOctets": 2},
        },
    }
    (folder / "anon_ip.json").write_text(json.dumps(config))
    return folder


def enrich_env(*, nsqd: NsqdServer, resolver_file: Path, **nsq_settings: str) -> dict[str, str]:
    env = {
        "SNOWPLOW_ENRICH_NSQ__NSQD_TCP_ADDRESSES": json.dumps([nsqd.tcp_address]),
        "SNOWPLOW_ENRICH_NSQ__NSQD_HTTP_ADDRESS": nsqd.http_address,
        "SNOWPLOW_ENRICH_IGLU_RESOLVER": str(resolver_file),
        # Payloads in flight when enrich dies come back after 2 s instead of nsqd's 60 s.
        "SNOWPLOW_ENRICH_NSQ__MSG_TIMEOUT_SECONDS": "2",
    }
    env.update(
        {f"SNOWPLOW_ENRICH_NSQ__{name.upper()}": value for name, value in nsq_settings.items()}
    )
    return env


@contextlib.contextmanager
def running(enrich: EnrichProcess) -> Iterator[EnrichProcess]:
    try:
        enrich.start()
        yield enrich
    finally:
        enrich.process.stop()


class Outputs:
    """Everything enrich published, as event ids (good) and bad rows, duplicates kept."""

    def __init__(self) -> None:
        self.good: list[dict[str, str]] = []
        self.bad: list[dict[str, Any]] = []

    async def add_good(self, message: bytes) -> None:
        self.good.append(enriched.from_tsv(message.decode()))

    async def add_bad(self, message: bytes) -> None:
        self.bad.append(badrows.parse(message))

    def event_ids(self) -> list[str]:
        ids = [event["event_id"] for event in self.good]
        for row in self.bad:
            if row["schema"] == badrows.SCHEMA_VIOLATIONS:
                parameters = row["data"]["payload"]["raw"]["parameters"]
                ids += [p["value"] for p in parameters if p["name"] == "eid"]
        return ids


@pytest.fixture
async def outputs(fresh_nsqd: NsqdServer) -> AsyncIterator[Outputs]:
    """Consumes EnrichedEvents and BadEnrichedEvents on the test's own channel."""
    found = Outputs()
    consumer = nsq.NsqConsumer(nsqd_tcp_addresses=[fresh_nsqd.tcp_address], options=FAST)
    tasks = [
        asyncio.create_task(consumer.consume(topics.ENRICHED_EVENTS, "test", found.add_good)),
        asyncio.create_task(consumer.consume(topics.BAD_ENRICHED_EVENTS, "test", found.add_bad)),
    ]
    await eventually(consumer.is_connected, what="the output consumers")
    yield found
    consumer.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


async def publish_raw(nsqd: NsqdServer, messages: list[bytes]) -> None:
    async with nsq.NsqPublisher(http_address=nsqd.http_address) as publisher:
        await publisher.publish(topics.RAW_EVENTS, messages)


@pytest.mark.nsq
async def test_payloads_on_raw_events_come_out_as_enriched_events_and_bad_rows(
    fresh_nsqd: NsqdServer, resolver_file: Path, outputs: Outputs, tmp_path: Path
) -> None:
    good_id, bad_id = str(uuid.uuid4()), str(uuid.uuid4())
    unreadable = b"\x00\x01 definitely not thrift\n"
    env = enrich_env(nsqd=fresh_nsqd, resolver_file=resolver_file)
    env["SNOWPLOW_ENRICH_ENRICHMENTS"] = str(anon_ip_folder(tmp_path / "enrichments"))
    enrich = EnrichProcess(workdir=tmp_path, env=env)

    with running(enrich):
        await publish_raw(fresh_nsqd, [page_view(good_id), invalid_entity(bad_id), unreadable])
        await eventually(lambda: len(outputs.good) + len(outputs.bad) >= 3, what="3 outputs")
        good_metric = enrich.metric('enrich_events_total{outcome="good"}')
        bad_metric = enrich.metric('enrich_events_total{outcome="bad"}')

    [event] = outputs.good
    assert (event["event_id"], event["event"], event["app_id"]) == (good_id, "page_view", "shop")
    assert event["v_etl"].startswith("snowplow-mini-enrich-")
    assert event["user_ipaddress"] == "203.0.x.x"  # the anon_ip enrichment ran
    violation, unreadable_row = sorted(outputs.bad, key=lambda row: row["schema"], reverse=True)
    assert violation["schema"] == badrows.SCHEMA_VIOLATIONS
    assert outputs.event_ids().count(bad_id) == 1
    assert unreadable_row["schema"] == badrows.COLLECTOR_PAYLOAD_FORMAT_VIOLATION
    assert base64.b64decode(unreadable_row["data"]["payload"]) == unreadable
    assert (good_metric, bad_metric) == (1.0, 2.0)
    assert enrich.log_messages()[-1] == "Enrich stopped."


@pytest.mark.nsq
async def test_enrich_killed_mid_stream_loses_nothing_after_a_restart(
    fresh_nsqd: NsqdServer, resolver_file: Path, outputs: Outputs, tmp_path: Path
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3000)]
    payloads = [invalid_entity(i) if n % 10 == 0 else page_view(i) for n, i in enumerate(ids)]
    enrich = EnrichProcess(
        workdir=tmp_path,
        env=enrich_env(nsqd=fresh_nsqd, resolver_file=resolver_file, max_in_flight="20"),
    )

    with running(enrich):
        await publish_raw(fresh_nsqd, payloads)
        await eventually(lambda: len(outputs.event_ids()) >= 300, what="300 outputs")
        enrich.process.kill()
        seen_at_kill = len(set(outputs.event_ids()))
        enrich.start()
        await eventually(
            lambda: set(outputs.event_ids()) >= set(ids),
            timeout_seconds=90,
            what="every payload enriched",
        )

    assert seen_at_kill < len(ids), "enrich finished before it was killed; the test proves nothing"
    found = outputs.event_ids()
    assert set(found) == set(ids)
    # Duplicates only come from redeliveries of the payloads in flight when enrich died.
    assert len(found) - len(ids) <= 20
    assert len(outputs.bad) >= 300


class SwitchableProxy:
    """An HTTP proxy in front of nsqd that answers 503 while ``is_down``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.is_down = True
        self.refused = 0
        self.port = free_port()

    async def forward(self, request: web.Request) -> web.Response:
        if self.is_down:
            self.refused += 1
            return web.Response(status=503, text="down for the test")
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                f"http://{self.target}{request.rel_url}",
                data=await request.read(),
            ) as answer,
        ):
            return web.Response(status=answer.status, body=await answer.read())

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        try:
            yield f"127.0.0.1:{self.port}"
        finally:
            await runner.cleanup()


@pytest.mark.nsq
async def test_payloads_are_retried_while_publishing_fails_and_none_is_lost(
    fresh_nsqd: NsqdServer, resolver_file: Path, outputs: Outputs, tmp_path: Path
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(20)]
    proxy = SwitchableProxy(fresh_nsqd.http_address)

    async with proxy.serving() as publish_address:
        env = enrich_env(nsqd=fresh_nsqd, resolver_file=resolver_file)
        env["SNOWPLOW_ENRICH_NSQ__NSQD_HTTP_ADDRESS"] = publish_address
        enrich = EnrichProcess(workdir=tmp_path, env=env)
        enrich.process.start()
        await publish_raw(fresh_nsqd, [page_view(i) for i in ids])
        await eventually(lambda: proxy.refused >= 3, what="refused publishes")

        await eventually(lambda: enrich.health_status() == 503, what="enrich reporting unhealthy")
        assert outputs.good == []
        proxy.is_down = False
        await eventually(
            lambda: set(outputs.event_ids()) == set(ids), timeout_seconds=60, what="all events"
        )
        failures = enrich.metric('enrich_failures_total{reason="publish"}')
        enrich.process.stop()

    assert failures >= 1
    assert any("pausing consumption" in message for message in enrich.log_messages())
