"""Benchmark: end-to-end latency, tracker request to searchable event, at a steady rate.

Runs the cluster pipeline as separate processes, each on 127.0.0.1: nsqd, Elasticsearch,
``snowplow-mini collector``, ``snowplow-mini enrich`` and ``snowplow-mini sink good``. Page views
are sent as ``GET /i`` requests at ``--rate`` per second, each with its own ``eid`` (event id);
a poller searches the ``good`` index every ``--poll-seconds`` for the ids still pending. The
latency of an event is the time from the start of its request to the first search that finds
it, so it includes the index's refresh interval (1 s by default), as a Kibana user sees it.

Run: ``.venv/bin/python benchmarks/sink_e2e.py`` (servers come from the test cache; run
``make provision`` first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import elasticsearch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.components import layout
from tests.components.es_server import ElasticsearchServer
from tests.components.nsq_server import NsqdServer
from tests.components.processes import ManagedProcess, free_port, wait_until

START_SECONDS = 90.0
DRAIN_SECONDS = 60.0
# Only the package's embedded registry: nothing is fetched from any other host.
RESOLVER = {
    "schema": "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-1",
    "data": {"cacheSize": 500, "repositories": []},
}


def command_process(name: str, args: list[str], *, env: dict[str, str], workdir: pathlib.Path):
    code = "from snowplow_pipeline.cli import main; raise SystemExit(main())"
    return ManagedProcess(
        name,
        [sys.executable, "-c", code, "--log-format", "json", *args],
        log_path=workdir / f"{name}.log",
        env={**os.environ, **env},
    )


def is_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


@contextlib.contextmanager
def pipeline(workdir: pathlib.Path) -> Iterator[dict[str, Any]]:
    """Start every server and component; yield their addresses; stop them all."""
    lay = layout.current()
    nsqd = NsqdServer(workdir / "nsqd", lay)
    es = ElasticsearchServer(lay)
    ports = {name: free_port() for name in ("collector", "enrich", "sink")}
    resolver = workdir / "resolver.json"
    resolver.write_text(json.dumps(RESOLVER))
    nsq_env = {
        "NSQD_TCP_ADDRESSES": json.dumps([nsqd.tcp_address]),
        "NSQD_HTTP_ADDRESS": nsqd.http_address,
    }
    processes = [
        command_process(
            "collector",
            ["collector", "--port", str(ports["collector"])],
            env={"SNOWPLOW_COLLECTOR_NSQ__NSQD_HTTP_ADDRESS": nsqd.http_address},
            workdir=workdir,
        ),
        command_process(
            "enrich",
            ["enrich", "--port", str(ports["enrich"]), "--iglu", str(resolver)],
            env={f"SNOWPLOW_ENRICH_NSQ__{k}": v for k, v in nsq_env.items()},
            workdir=workdir,
        ),
        command_process(
            "sink",
            ["sink", "good", "--port", str(ports["sink"]), "--elasticsearch-url", es.url],
            env={f"SNOWPLOW_SINK_NSQ__{k}": v for k, v in nsq_env.items()},
            workdir=workdir,
        ),
    ]
    health = {
        "collector": f"http://127.0.0.1:{ports['collector']}/health",
        "enrich": f"http://127.0.0.1:{ports['enrich']}/health",
        "sink": f"http://127.0.0.1:{ports['sink']}/health",
    }
    try:
        nsqd.start()
        es.start()
        for process in processes:
            process.start()
        for process in processes:
            wait_until(
                lambda p=process: is_ok(health[p.name]),
                timeout_seconds=START_SECONDS,
                what=f"{process.name} health",
                process=process,
            )
        yield {"collector": f"http://127.0.0.1:{ports['collector']}", "es": es.url}
    finally:
        for process in reversed(processes):
            process.stop()
        es.remove()
        nsqd.stop()


async def send_events(
    collector_url: str, *, rate: float, seconds: float, sent: dict[str, float]
) -> int:
    """Send page views at ``rate`` per second; return how many the collector refused."""
    refused = 0
    total = int(rate * seconds)
    async with aiohttp.ClientSession() as session:

        async def send_one(event_id: str) -> None:
            nonlocal refused
            params = {
                "e": "pv", "eid": event_id, "p": "web", "tv": "bench-0.1", "aid": "bench",
                "url": "https://shop.example/cart", "dtm": str(int(time.time() * 1000)),
            }  # fmt: skip
            sent[event_id] = time.monotonic()
            async with session.get(f"{collector_url}/i", params=params) as response:
                await response.read()
                refused += response.status != 200

        started = time.monotonic()
        requests = []
        for number in range(total):
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            requests.append(asyncio.create_task(send_one(str(uuid.uuid4()))))
        await asyncio.gather(*requests)
    return refused


async def poll_searchable(
    es_url: str, *, sent: dict[str, float], seen: dict[str, float], until: asyncio.Event,
    poll_seconds: float,
) -> None:  # fmt: skip
    """Record when each sent event first shows up in a search of the good index."""
    client = elasticsearch.AsyncElasticsearch(es_url, request_timeout=30)
    try:
        while not until.is_set() or len(seen) < len(sent):
            pending = [event_id for event_id in sent if event_id not in seen]
            for start in range(0, len(pending), 5000):
                chunk = pending[start : start + 5000]
                try:
                    answer = await client.search(
                        index="good",
                        query={"terms": {"event_id": chunk}},
                        size=len(chunk),
                        source=False,
                    )
                except elasticsearch.ApiError as exc:
                    print(f"search failed: {exc.status_code} {json.dumps(exc.body)[:600]}")
                    continue
                now = time.monotonic()
                for hit in answer["hits"]["hits"]:
                    seen.setdefault(hit["_id"], now)
            await asyncio.sleep(poll_seconds)
    finally:
        await client.close()


async def measure(
    urls: dict[str, Any], *, rate: float, seconds: float, poll: float
) -> dict[str, Any]:
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    done_sending = asyncio.Event()
    poller = asyncio.create_task(
        poll_searchable(urls["es"], sent=sent, seen=seen, until=done_sending, poll_seconds=poll)
    )
    refused = await send_events(urls["collector"], rate=rate, seconds=seconds, sent=sent)
    done_sending.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(poller), timeout=DRAIN_SECONDS)
    poller.cancel()
    latencies = sorted(seen[event_id] - sent[event_id] for event_id in seen)
    cut = statistics.quantiles(latencies, n=100)
    return {
        "rate_per_second": rate,
        "seconds": seconds,
        "events_sent": len(sent),
        "refused_by_collector": refused,
        "searchable": len(seen),
        "missing_after_drain": len(sent) - len(seen),
        "poll_seconds": poll,
        "latency_seconds": {
            "p50": round(statistics.median(latencies), 3),
            "p90": round(cut[89], 3),
            "p99": round(cut[98], 3),
            "max": round(latencies[-1], 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    parser.add_argument("--poll-seconds", type=float, default=0.1)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="sink-e2e-") as folder,
        pipeline(pathlib.Path(folder)) as urls,
    ):
        result = asyncio.run(
            measure(urls, rate=args.rate, seconds=args.seconds, poll=args.poll_seconds)
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
