"""The pipeline as deployed: real collector and enrich processes on a real nsqd.

``pipeline`` starts ``snowplow-mini collector`` and ``snowplow-mini enrich`` as processes on
a private nsqd, with a local schema folder as the only registry and a set of enrichments, and
reads everything that comes out on ``EnrichedEvents``, ``BadEnrichedEvents`` and
``BadRawEvents`` on channels of its own.

``rendered_pipeline`` (one test) and ``shared_rendered_pipeline`` (one module, for tests that
each send their own events) run the whole Mini as the operator renders it, sinks included, on
a private nsqd and Elasticsearch (see ``rendered.py``); ``es_client`` reads its indexes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import pathlib
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import elasticsearch as elasticsearch_client
import pytest

from snowplow_pipeline import badrows, enriched, nsq, topics
from tests.components import layout
from tests.components.es_server import ElasticsearchServer
from tests.components.nsq_server import NsqdServer
from tests.components.processes import ManagedProcess, free_port, wait_until
from tests.e2e import rendered
from tests.local.conftest import TEST_SCHEMAS

# The tracker tests' fixtures, shared rather than copied: the pinned npm packages, and the
# origin serving the browser tracker's test page.
from tests.trackers.conftest import tracker_packages  # noqa: F401
from tests.trackers.test_browser_tracker import page_origin  # noqa: F401

SNOWPLOW_MINI = pathlib.Path(sys.executable).with_name("snowplow-mini")
CHANNEL = "e2e-tests"
OUTPUT_TOPICS = (topics.ENRICHED_EVENTS, topics.BAD_ENRICHED_EVENTS, topics.BAD_RAW_EVENTS)
FAST_CONSUMER = nsq.ConsumerOptions(
    backoff_seconds=0.1,
    max_backoff_seconds=0.5,
    reconnect_seconds=0.1,
    max_reconnect_seconds=0.5,
    heartbeat_seconds=1.0,
    drain_timeout_seconds=5.0,
)


def enrichment(
    name: str,
    parameters: dict[str, Any],
    *,
    version: str,
    vendor: str = "com.snowplowanalytics.snowplow",
) -> dict[str, Any]:
    return {
        "schema": f"iglu:{vendor}/{name}/jsonschema/{version}",
        "data": {"name": name, "vendor": vendor, "enabled": True, "parameters": parameters},
    }


ENRICHMENTS = {
    "anon_ip": enrichment("anon_ip", {"anonOctets": 1}, version="1-0-0"),
    "campaign_attribution": enrichment(
        "campaign_attribution",
        {
            "mapping": "static",
            "fields": {
                "mktMedium": ["utm_medium"],
                "mktSource": ["utm_source"],
                "mktTerm": ["utm_term"],
                "mktContent": ["utm_content"],
                "mktCampaign": ["utm_campaign"],
            },
        },
        version="1-0-1",
    ),
    "ua_parser_config": enrichment("ua_parser_config", {}, version="1-0-0"),
    # Hashing a whole object is impossible: events carrying a device entity fail enrichment.
    "pii_enrichment_config": enrichment(
        "pii_enrichment_config",
        {
            "pii": [
                {
                    "json": {
                        "field": "contexts",
                        "schemaCriterion": "iglu:com.acme/device/jsonschema/1-*-*",
                        "jsonPath": "$",
                    }
                }
            ],
            "strategy": {"pseudonymize": {"hashFunction": "SHA-256", "salt": "pepper"}},
        },
        version="2-0-0",
        vendor="com.snowplowanalytics.snowplow.enrichments",
    ),
}


@dataclasses.dataclass
class Pipeline:
    collector_url: str
    nsqd: NsqdServer
    received: dict[str, list[bytes]]

    def good(self) -> list[dict[str, str]]:
        return [enriched.from_tsv(m.decode()) for m in self.received[topics.ENRICHED_EVENTS]]

    def bad(self) -> list[dict[str, Any]]:
        return [
            badrows.parse(m)
            for topic in (topics.BAD_ENRICHED_EVENTS, topics.BAD_RAW_EVENTS)
            for m in self.received[topic]
        ]

    async def wait_for(self, *, good: int, bad: int, timeout_seconds: float = 30) -> None:
        """Poll until exactly this many good events and bad rows arrived, then settle."""
        deadline = time.monotonic() + timeout_seconds
        while len(self.good()) < good or len(self.bad()) < bad:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"after {timeout_seconds} s: {len(self.good())} of {good} "
                    f"good, {len(self.bad())} of {bad} bad: {self.bad()}"
                )
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # anything extra (a duplicate) would show up by now
        assert (len(self.good()), len(self.bad())) == (good, bad)


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def _write_setup(root: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    schemas = root / "schemas"
    for schema in TEST_SCHEMAS:
        s = schema["self"]
        path = schemas / "schemas" / s["vendor"] / s["name"] / s["format"] / s["version"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema))
    resolver = root / "resolver.json"
    resolver.write_text(
        json.dumps(
            {
                "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3",
                "data": {
                    "cacheSize": 500,
                    "cacheTtl": 600,
                    "repositories": [
                        {
                            "name": "Test schemas",
                            "priority": 0,
                            "vendorPrefixes": ["com.acme"],
                            "connection": {"embedded": {"path": str(schemas)}},
                        }
                    ],
                },
            }
        )
    )
    enrichments = root / "enrichments"
    enrichments.mkdir()
    for name, config in ENRICHMENTS.items():
        (enrichments / f"{name}.json").write_text(json.dumps(config))
    return resolver, enrichments


@pytest.fixture
async def pipeline(fresh_nsqd: NsqdServer, tmp_path: pathlib.Path) -> AsyncIterator[Pipeline]:
    resolver, enrichments = _write_setup(tmp_path)
    collector_port, enrich_port = free_port(), free_port()
    processes = [
        ManagedProcess(
            "collector",
            [str(SNOWPLOW_MINI), "collector", "--port", str(collector_port)],
            log_path=tmp_path / "collector.log",
            env={
                **os.environ,
                "SNOWPLOW_COLLECTOR_NSQ__NSQD_HTTP_ADDRESS": fresh_nsqd.http_address,
            },
        ),
        ManagedProcess(
            "enrich",
            [str(SNOWPLOW_MINI), "enrich"],
            log_path=tmp_path / "enrich.log",
            env={
                **os.environ,
                "SNOWPLOW_ENRICH_PORT": str(enrich_port),
                "SNOWPLOW_ENRICH_IGLU_RESOLVER": str(resolver),
                "SNOWPLOW_ENRICH_ENRICHMENTS": str(enrichments),
                "SNOWPLOW_ENRICH_NSQ__NSQD_TCP_ADDRESSES": json.dumps([fresh_nsqd.tcp_address]),
                "SNOWPLOW_ENRICH_NSQ__NSQD_HTTP_ADDRESS": fresh_nsqd.http_address,
            },
        ),
    ]
    received: dict[str, list[bytes]] = {topic: [] for topic in OUTPUT_TOPICS}
    consumers = []
    tasks = []
    for topic in OUTPUT_TOPICS:
        consumer = nsq.NsqConsumer(
            nsqd_tcp_addresses=[fresh_nsqd.tcp_address], options=FAST_CONSUMER
        )

        async def keep(message: bytes, topic: str = topic) -> None:
            received[topic].append(message)

        consumers.append(consumer)
        tasks.append(asyncio.create_task(consumer.consume(topic, CHANNEL, keep)))
    try:
        for process, url in zip(
            processes,
            (f"http://127.0.0.1:{collector_port}/health", f"http://127.0.0.1:{enrich_port}/health"),
            strict=True,
        ):
            await asyncio.to_thread(process.start)
            await asyncio.to_thread(
                wait_until,
                lambda url=url: _answers(url),
                timeout_seconds=60,
                what=f"{process.name} /health",
                process=process,
            )
        yield Pipeline(
            collector_url=f"http://127.0.0.1:{collector_port}", nsqd=fresh_nsqd, received=received
        )
    finally:
        for process in processes:
            await asyncio.to_thread(process.stop)
        for consumer in consumers:
            consumer.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


# The enrichments of the rendered Mini: those that change fields of every event.
RENDERED_ENRICHMENTS = {
    name: ENRICHMENTS[name] for name in ("anon_ip", "campaign_attribution", "ua_parser_config")
}


@pytest.fixture
def rendered_pipeline(
    fresh_nsqd: NsqdServer, fresh_elasticsearch: ElasticsearchServer, tmp_path: pathlib.Path
) -> Iterator[rendered.RenderedPipeline]:
    with rendered.running(
        tmp_path / "mini",
        nsqd=fresh_nsqd,
        elasticsearch=fresh_elasticsearch,
        enrichments=RENDERED_ENRICHMENTS,
    ) as mini:
        yield mini


@pytest.fixture(scope="module")
def shared_rendered_pipeline(
    component_layout: layout.Layout, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[rendered.RenderedPipeline]:
    """A rendered Mini for one module, on its own nsqd and Elasticsearch, removed after it.

    Tests that share it tell their events apart by event id (and app id).
    """
    root = tmp_path_factory.mktemp("rendered-mini")
    nsqd = NsqdServer(root / "nsqd", component_layout)
    es = ElasticsearchServer(component_layout)
    try:
        nsqd.start()
        es.start()
        with rendered.running(
            root, nsqd=nsqd, elasticsearch=es, enrichments=RENDERED_ENRICHMENTS
        ) as mini:
            yield mini
    finally:
        es.remove()
        nsqd.stop()


@pytest.fixture
def es_client(
    request: pytest.FixtureRequest,
) -> Iterator[elasticsearch_client.Elasticsearch]:
    """A client of the Elasticsearch of whichever rendered pipeline the test uses."""
    name = next(
        n for n in ("rendered_pipeline", "shared_rendered_pipeline") if n in request.fixturenames
    )
    mini: rendered.RenderedPipeline = request.getfixturevalue(name)
    client = elasticsearch_client.Elasticsearch(mini.elasticsearch.url, request_timeout=30)
    try:
        yield client
    finally:
        client.close()
