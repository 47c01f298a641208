"""Benchmark: collector requests/s and events/s on one core, against a bare aiohttp endpoint.

Three servers, each pinned to core 0 with ``taskset -c 0`` and measured in the same run:

* ``bare``: an aiohttp app answering 200 ``ok`` (reading the body of a POST), served as the
  collector serves (``collector.start``, no access log) - the ceiling for aiohttp on one core;
* ``collector, MemoryTopics``: the collector app publishing to in-process topics with no
  consumer, where a publish is a list append - the collector's HTTP and capture cost;
* ``collector, nsqd``: the real ``snowplow-mini collector`` process publishing to a real nsqd
  over HTTP - the whole cost, publish included.

Two workloads: GET pixels (``/i`` with a browser-sized page view query string, one event per
request) and POST batches of 10 events to tp2 (about 7 kB of JSON). The load generator is
``wrk`` on core 1 (nsqd shares that core), with a Lua script that reports requests, errors and
p50/p99 latency as JSON. Each measurement follows a short warm-up on the same server. Load is
bounded by time (``--seconds``) and goes to 127.0.0.1 only.

Run: ``.venv/bin/python benchmarks/collector_throughput.py`` (``--seconds``, ``--connections``,
``--rounds``). It needs ``wrk`` and ``taskset`` (``make provision`` installs wrk) and nsqd from
the test cache. ``... collector_throughput.py serve memory --port P --profile out.prof`` serves
the MemoryTopics collector alone and writes a cProfile when it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import dataclasses
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import urlencode

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from snowplow_pipeline import collector, topics  # noqa: E402
from tests.components import layout  # noqa: E402
from tests.components.processes import ManagedProcess, free_port, wait_until  # noqa: E402

SERVER_CORE = "0"
LOAD_CORE = "1"
WARM_UP_SECONDS = 2
EVENTS_PER_POST = 10
TP2 = "/com.snowplowanalytics.snowplow/tp2"
SNOWPLOW_MINI = pathlib.Path(sys.executable).with_name("snowplow-mini")

# wrk's Lua hook: one JSON line with what the table needs (latencies are in microseconds).
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


# --- what is sent ---------------------------------------------------------------------------


def page_view(index: int) -> dict[str, str]:
    """A page view as the browser tracker sends it, with a web_page entity (base64 for GET)."""
    entity = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [
            {
                "schema": "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
                "data": {"id": str(uuid.uuid4())},
            }
        ],
    }
    return {
        "e": "pv",
        "url": f"https://shop.example/products/{index}?utm_source=newsletter",
        "page": "Running shoes - Shop",
        "refr": "https://shop.example/",
        "tv": "js-4.10.1",
        "tna": "sp",
        "aid": "shop",
        "p": "web",
        "tz": "Europe/Berlin",
        "lang": "en-US",
        "cs": "UTF-8",
        "res": "1920x1080",
        "cd": "24",
        "cookie": "1",
        "eid": str(uuid.uuid4()),
        "dtm": "1714557600123",
        "stm": "1714557600125",
        "vp": "1280x720",
        "ds": "1280x3400",
        "vid": "3",
        "sid": str(uuid.uuid4()),
        "duid": str(uuid.uuid4()),
        "cx": base64.urlsafe_b64encode(json.dumps(entity).encode()).decode().rstrip("="),
    }


def get_path() -> str:
    return "/i?" + urlencode(page_view(0))


def post_body() -> str:
    events = []
    for index in range(EVENTS_PER_POST):
        event = page_view(index)
        event["co"] = base64.urlsafe_b64decode(event.pop("cx") + "==").decode()
        events.append(event)
    schema = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
    return json.dumps({"schema": schema, "data": events})


def wrk_script(*, method: str) -> str:
    if method == "GET":
        return WRK_REPORT
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json; charset=UTF-8"\n'
        f"wrk.body = {json.dumps(post_body())}\n" + WRK_REPORT
    )


# --- the servers under test --------------------------------------------------------------------


def bare_app() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", answer)
    app.router.add_get("/i", answer)
    app.router.add_post(TP2, answer)
    return app


async def serve(*, kind: str, port: int, profile_path: str | None) -> None:
    """Serve ``bare`` or the collector on MemoryTopics until SIGTERM (then write the profile)."""
    settings = collector.CollectorSettings(host="127.0.0.1", port=port)
    memory = topics.MemoryTopics()
    app = bare_app() if kind == "bare" else collector.build_app(settings=settings, publisher=memory)
    # One channel that drops what it gets, as a consumer would: memory stays bounded.
    consumer = asyncio.create_task(memory.consume(topics.RAW_EVENTS, "bench", _discard))
    profiler = cProfile.Profile() if profile_path else None
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    runner = await collector.start(settings=settings, app=app)
    try:
        if profiler is not None:
            profiler.enable()
        await stopping.wait()
    finally:
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
        consumer.cancel()
        await runner.cleanup()


async def _discard(message: bytes) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class Server:
    label: str
    args: list[str]
    env: dict[str, str]


@contextmanager
def running(server: Server, *, workdir: pathlib.Path) -> Iterator[tuple[str, int]]:
    """Start ``server`` pinned to the server core; yield its origin and pid once it answers.

    ``taskset`` execs the server, so the pid is the server's own.
    """
    port = free_port()
    process = ManagedProcess(
        server.label,
        ["taskset", "-c", SERVER_CORE, *server.args, "--port", str(port)],
        log_path=workdir / f"{server.label.replace(' ', '-').replace(',', '')}.log",
        env=server.env,
    )
    process.start()
    origin = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: _answers(f"{origin}/health"),
            timeout_seconds=30,
            what=f"{server.label} /health",
            process=process,
        )
        assert process.pid is not None
        yield origin, process.pid
    finally:
        process.stop()


def _answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


@contextmanager
def running_nsqd(*, workdir: pathlib.Path) -> Iterator[str]:
    """A private nsqd on the load core; yields its HTTP address."""
    binary = layout.current().binary("nsqd")
    if not binary.is_file():
        raise SystemExit(f"nsqd is missing at {binary}; run `make provision` first")
    tcp_port, http_port = free_port(), free_port()
    process = ManagedProcess(
        "nsqd",
        [
            "taskset",
            "-c",
            LOAD_CORE,
            str(binary),
            f"--tcp-address=127.0.0.1:{tcp_port}",
            f"--http-address=127.0.0.1:{http_port}",
            "--https-address=",
            f"--data-path={workdir}",
            # Messages pile up unconsumed; keep them in memory rather than writing them out.
            "--mem-queue-size=10000000",
        ],
        log_path=workdir / "nsqd.log",
    )
    process.start()
    address = f"127.0.0.1:{http_port}"
    try:
        wait_until(
            lambda: _answers(f"http://{address}/ping"),
            timeout_seconds=30,
            what="nsqd /ping",
            process=process,
        )
        yield address
    finally:
        process.stop()


def raw_events_count(nsqd_http_address: str) -> int:
    url = f"http://{nsqd_http_address}/stats?format=json&topic={topics.RAW_EVENTS}"
    with urllib.request.urlopen(url, timeout=5) as response:
        stats = json.load(response)
    return sum(topic["message_count"] for topic in stats.get("topics") or [])


# --- measuring --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Measurement:
    server: str
    workload: str
    requests: int
    seconds: float
    events_per_request: int
    p50_ms: float
    p99_ms: float
    failed: int
    cpu_seconds: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / self.requests * 1e6

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def events_per_second(self) -> float:
        return self.requests_per_second * self.events_per_request


def run_wrk(*, url: str, script: pathlib.Path, seconds: int, connections: int) -> dict[str, int]:
    """One bounded wrk run on the load core; returns the JSON its ``done`` hook printed."""
    args = [
        "taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
        "--timeout", "10s", "-s", str(script), url,
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=True)
    report: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (from /proc)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    *,
    server: str,
    server_pid: int,
    workload: str,
    url: str,
    script: pathlib.Path,
    seconds: int,
    connections: int,
    events_per_request: int,
) -> Measurement:
    run_wrk(url=url, script=script, seconds=WARM_UP_SECONDS, connections=connections)
    cpu_before = cpu_seconds(server_pid)
    report = run_wrk(url=url, script=script, seconds=seconds, connections=connections)
    return Measurement(
        server=server,
        workload=workload,
        requests=report["requests"],
        seconds=report["duration_us"] / 1e6,
        events_per_request=events_per_request,
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        failed=report["non_2xx"] + report["socket_errors"],
        cpu_seconds=cpu_seconds(server_pid) - cpu_before,
    )


@dataclasses.dataclass(frozen=True)
class Summary:
    """The median of the rounds of one server on one workload."""

    server: str
    workload: str
    requests_per_second: float
    events_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    failed: int

    @classmethod
    def of(cls, rounds: Sequence[Measurement]) -> Summary:
        def median(values: Iterator[float]) -> float:
            return statistics.median(list(values))

        return cls(
            server=rounds[0].server,
            workload=rounds[0].workload,
            requests_per_second=median(m.requests_per_second for m in rounds),
            events_per_second=median(m.events_per_second for m in rounds),
            p50_ms=median(m.p50_ms for m in rounds),
            p99_ms=median(m.p99_ms for m in rounds),
            cpu_us_per_request=median(m.cpu_us_per_request for m in rounds),
            failed=sum(m.failed for m in rounds),
        )


def print_table(summaries: Sequence[Summary]) -> None:
    """Rates and latencies, with two ratios to the bare endpoint on the same workload: of the
    rates measured, and of the server CPU each request took (what one free core would give)."""
    bare = {s.workload: s for s in summaries if s.server == "bare"}
    header = (
        f"{'workload':<15} {'server':<24} {'requests/s':>10} {'events/s':>9} {'vs bare':>7} "
        f"{'CPU us/req':>10} {'vs bare':>7} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    for s in summaries:
        base = bare[s.workload]
        rate_ratio = s.requests_per_second / base.requests_per_second
        cpu_ratio = base.cpu_us_per_request / s.cpu_us_per_request
        print(
            f"{s.workload:<15} {s.server:<24} {s.requests_per_second:>10,.0f} "
            f"{s.events_per_second:>9,.0f} {rate_ratio:>7.0%} {s.cpu_us_per_request:>10,.0f} "
            f"{cpu_ratio:>7.0%} {s.p50_ms:>7.2f} {s.p99_ms:>7.2f} {s.failed:>6}"
        )


def empty_raw_events(nsqd_http_address: str) -> None:
    """Drop what the collector published so far; nsqd's message count keeps counting."""
    url = f"http://{nsqd_http_address}/topic/empty?topic={topics.RAW_EVENTS}"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10):
        pass


def run_benchmark(*, seconds: int, connections: int, rounds: int) -> None:
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"`{tool}` is not installed; run `make provision` (apt-get wrk)")
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs two cores: one for the server, one for wrk")
    this = [sys.executable, str(pathlib.Path(__file__).resolve()), "serve"]
    workloads = [
        ("GET pixel", get_path(), "GET", 1),
        (f"POST {EVENTS_PER_POST} events", TP2, "POST", EVENTS_PER_POST),
    ]
    results: dict[tuple[str, str], list[Measurement]] = {}
    nsqd_requests = 0
    with tempfile.TemporaryDirectory(prefix="collector-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        scripts = {}
        for method in ("GET", "POST"):
            scripts[method] = workdir / f"{method.lower()}.lua"
            scripts[method].write_text(wrk_script(method=method))
        with running_nsqd(workdir=workdir / "nsqd") as nsqd_address:
            servers = [
                Server("bare", [*this, "bare"], dict(os.environ)),
                Server("collector, MemoryTopics", [*this, "memory"], dict(os.environ)),
                Server(
                    "collector, nsqd",
                    [str(SNOWPLOW_MINI), "--log-level", "WARNING", "collector"],
                    {**os.environ, "SNOWPLOW_COLLECTOR_NSQ__NSQD_HTTP_ADDRESS": nsqd_address},
                ),
            ]
            # Rounds interleave the servers, so a busy moment of the machine hits all of them.
            for round_number in range(1, rounds + 1):
                for workload, path, method, events in workloads:
                    for server in servers:
                        published_before = raw_events_count(nsqd_address)
                        with running(server, workdir=workdir) as (origin, pid):
                            measurement = measure(
                                server=server.label,
                                server_pid=pid,
                                workload=workload,
                                url=origin + path,
                                script=scripts[method],
                                seconds=seconds,
                                connections=connections,
                                events_per_request=events,
                            )
                        results.setdefault((workload, server.label), []).append(measurement)
                        if server.label == "collector, nsqd":
                            nsqd_requests += raw_events_count(nsqd_address) - published_before
                            empty_raw_events(nsqd_address)
                        print(
                            f"  round {round_number}: {workload} on {server.label}: "
                            f"{measurement.requests_per_second:,.0f} requests/s",
                            file=sys.stderr,
                        )
    print()
    print_table([Summary.of(measurements) for measurements in results.values()])
    print(
        f"\nMedians of {rounds} rounds. {os.cpu_count()} cores; server on core {SERVER_CORE}, "
        f"wrk and nsqd on core {LOAD_CORE}; {connections} connections, {seconds} s per figure "
        f"after a {WARM_UP_SECONDS} s warm-up. POST body {len(post_body()):,} bytes, GET path "
        f"{len(get_path()):,} bytes. nsqd accepted {nsqd_requests:,} RawEvents messages from "
        f"the nsqd collector runs (warm-ups included). Load average at the end: "
        f"{os.getloadavg()[0]:.1f}."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    server = commands.add_parser("serve", help="(internal) serve one of the in-process servers")
    server.add_argument("kind", choices=["bare", "memory"])
    server.add_argument("--port", type=int, required=True)
    server.add_argument("--profile", help="write a cProfile of the server here")
    parser.add_argument("--seconds", type=int, default=10, help="length of each measurement")
    parser.add_argument("--connections", type=int, default=32, help="wrk's open connections")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each figure")
    args = parser.parse_args(argv)
    if args.command == "serve":
        asyncio.run(serve(kind=args.kind, port=args.port, profile_path=args.profile))
        return 0
    run_benchmark(seconds=args.seconds, connections=args.connections, rounds=args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
