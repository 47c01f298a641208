"""Benchmark: the highest event rate the whole Mini sustains, and its latency at half of it.

Runs the Mini as the operator renders it (``tests/e2e/rendered.py``: collector, enrich and both
sinks as separate processes) on a private nsqd and Elasticsearch, all on 127.0.0.1. A sender
that retries like a tracker (``tests/e2e/sending.py``) sends page views as ``GET /i``, each with
its own event id, at rising rates, each step for ``--step-seconds``. A step is **sustained**
when the collector acknowledged every event within the step (plus one second) and every event
was searchable in ``good`` within ``--catch-up-seconds`` of the step's end; the first step that
is not marks where the sandbox falls behind, and the ramp stops there.

Then, at half the highest sustained rate, it measures end-to-end latency (request start to the
first search that finds the event, the index refresh interval included, as with
``benchmarks/sink_e2e.py``, whose poller it uses) and the resident memory of every process.

Baselines of the same run, on the same servers: the latency of a document indexed straight
into Elasticsearch at the same rate (the floor set by the refresh interval and the poller),
and the rate at which the sender alone is answered by a bare aiohttp endpoint.

Run: ``.venv/bin/python benchmarks/e2e_load.py`` (``make provision`` first). Load is bounded:
at most ``len(--rates) * --step-seconds`` of sending, and every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import pathlib
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

import elasticsearch
from aiohttp import web

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from sink_e2e import poll_searchable

from tests.components import layout
from tests.components.es_server import ElasticsearchServer
from tests.components.nsq_server import NsqdServer
from tests.e2e import rendered, sending
from tests.e2e.conftest import RENDERED_ENRICHMENTS

POLL_SECONDS = 0.1


def rss_mib(pid: int | None) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    if pid is None:
        return 0.0
    children: dict[int, list[int]] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total_kib, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack += children.get(current, [])
        with contextlib.suppress(OSError):
            for line in pathlib.Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
    return round(total_kib / 1024, 1)


def memory(mini: rendered.RenderedPipeline) -> dict[str, float]:
    found = {name: rss_mib(c.process.pid) for name, c in mini.components.items()}
    found["nsqd"] = rss_mib(mini.nsqd._process.pid)
    found["elasticsearch"] = rss_mib(mini.elasticsearch._process.pid)
    return found


async def run_step(
    mini: rendered.RenderedPipeline, *, rate: float, seconds: float, catch_up_seconds: float
) -> dict[str, Any]:
    """Send at ``rate`` for ``seconds``; report whether the Mini kept up, and the latencies."""
    stream = sending.Stream(app_id=f"load-{int(rate)}")
    seen: dict[str, float] = {}
    done = asyncio.Event()
    poller = asyncio.create_task(
        poll_searchable(
            mini.elasticsearch.url,
            sent=stream.started_at,
            seen=seen,
            until=done,
            poll_seconds=POLL_SECONDS,
        )
    )
    started = time.monotonic()
    await sending.send_steadily(
        mini.collector_url,
        app_id=stream.app_id,
        per_second=rate,
        count=int(rate * seconds),
        give_up_after_seconds=seconds + 30,
        bad_every=0,
        stream=stream,
    )
    sending_ended = time.monotonic()
    done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(poller), timeout=catch_up_seconds)
    poller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await poller
    acknowledged_late = sum(
        1 for at in stream.acknowledged_at.values() if at > started + seconds + 1.0
    )
    latencies = sorted(seen[e] - stream.started_at[e] for e in seen)
    return {
        "rate_per_second": rate,
        "events": int(rate * seconds),
        "acknowledged": len(stream.acknowledged_at),
        "acknowledged_late": acknowledged_late,
        "sending_seconds": round(sending_ended - started, 2),
        "searchable": len(seen),
        "failed_attempts": dict(stream.failed_attempts),
        "sustained": acknowledged_late == 0
        and len(seen) == int(rate * seconds) == len(stream.acknowledged_at),
        "latency_seconds": percentiles(latencies),
    }


def percentiles(latencies: list[float]) -> dict[str, float] | None:
    if len(latencies) < 2:
        return None
    cut = statistics.quantiles(latencies, n=100)
    return {
        "p50": round(statistics.median(latencies), 3),
        "p99": round(cut[98], 3),
        "max": round(latencies[-1], 3),
    }


async def baseline_elasticsearch(es_url: str, *, rate: float, seconds: float) -> dict[str, Any]:
    """Index documents straight into Elasticsearch at ``rate``; latency until searchable.

    They go into ``good`` (where the poller searches), after the pipeline's measurements.
    """
    client = elasticsearch.AsyncElasticsearch(es_url, request_timeout=30)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = asyncio.Event()
    poller = asyncio.create_task(
        poll_searchable(es_url, sent=sent, seen=seen, until=done, poll_seconds=POLL_SECONDS)
    )
    try:
        started = time.monotonic()
        tasks = []
        for number in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            event_id = str(uuid.uuid4())
            sent[event_id] = time.monotonic()
            tasks.append(
                asyncio.create_task(
                    client.index(index="good", id=event_id, document={"event_id": event_id})
                )
            )
        await asyncio.gather(*tasks)
        done.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(poller), timeout=30)
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        await client.close()
    latencies = sorted(seen[e] - sent[e] for e in seen)
    return {
        "rate_per_second": rate,
        "documents": len(sent),
        "latency_seconds": percentiles(latencies),
    }


async def baseline_bare_endpoint(*, rate: float, seconds: float) -> dict[str, Any]:
    """The sender against an aiohttp endpoint that only answers 200: the sender's own ceiling."""
    app = web.Application()

    async def pixel(request: web.Request) -> web.Response:
        return web.Response(body=b"GIF89a")

    app.router.add_get("/i", pixel)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host="127.0.0.1", port=0)
    await site.start()
    try:
        _, port = runner.addresses[0]
        started = time.monotonic()
        stream = await sending.send_steadily(
            f"http://127.0.0.1:{port}",
            app_id="bare",
            per_second=rate,
            count=int(rate * seconds),
            bad_every=0,
        )
        elapsed = time.monotonic() - started
    finally:
        await runner.cleanup()
    return {
        "rate_per_second": rate,
        "acknowledged": len(stream.acknowledged_at),
        "sending_seconds": round(elapsed, 2),
        "achieved_per_second": round(len(stream.acknowledged_at) / elapsed, 1),
    }


async def measure(mini: rendered.RenderedPipeline, args: argparse.Namespace) -> dict[str, Any]:
    idle_memory = memory(mini)
    steps = []
    for rate in args.rates:
        step = await run_step(
            mini, rate=rate, seconds=args.step_seconds, catch_up_seconds=args.catch_up_seconds
        )
        step["memory_mib"] = memory(mini)
        print(json.dumps(step), flush=True)
        steps.append(step)
        if not step["sustained"]:
            break
    sustained = [step["rate_per_second"] for step in steps if step["sustained"]]
    max_rate = max(sustained) if sustained else 0.0
    half = max(max_rate / 2, 1.0)
    at_half = await run_step(
        mini, rate=half, seconds=args.half_seconds, catch_up_seconds=args.catch_up_seconds
    )
    at_half["memory_mib"] = memory(mini)
    return {
        "max_sustained_per_second": max_rate,
        "first_unsustained": next((s for s in steps if not s["sustained"]), None),
        "at_half_rate": at_half,
        "idle_memory_mib": idle_memory,
        "steps": steps,
        "baselines": {
            "elasticsearch_direct": await baseline_elasticsearch(
                mini.elasticsearch.url, rate=half, seconds=args.half_seconds
            ),
            "bare_endpoint": await baseline_bare_endpoint(
                rate=args.rates[-1], seconds=args.step_seconds
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[100, 200, 400, 600, 800, 1200, 1600, 2400, 3200]
    )
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--half-seconds", type=float, default=30.0)
    parser.add_argument("--catch-up-seconds", type=float, default=10.0)
    args = parser.parse_args()
    lay = layout.current()
    with tempfile.TemporaryDirectory(prefix="e2e-load-") as folder:
        root = pathlib.Path(folder)
        nsqd = NsqdServer(root / "nsqd", lay)
        es = ElasticsearchServer(lay)
        try:
            nsqd.start()
            es.start()
            with rendered.running(
                root / "mini", nsqd=nsqd, elasticsearch=es, enrichments=RENDERED_ENRICHMENTS
            ) as mini:
                result = asyncio.run(measure(mini, args))
        finally:
            es.remove()
            nsqd.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
