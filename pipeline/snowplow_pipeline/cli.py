"""The ``snowplow-mini`` command: one entry point, one subcommand per process kind.

Each subcommand builds its settings object once, from the environment and its flags, and
configures logging; the modules it calls never read the environment themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

import pydantic

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(json_lines=args.log_format == "json", level=args.log_level)
    try:
        return int(args.run(args) or 0)
    except pydantic.ValidationError as exc:
        print(settings_problems(exc), file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snowplow-mini", description=__doc__.splitlines()[0])
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser(
        "local", help="Run collector, enrich and an events API in one process, with no cluster."
    )
    local.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    local.add_argument("--port", type=int, help="port for trackers and the API (default 9090)")
    local.add_argument("--iglu", dest="iglu_resolver", help="a Snowplow resolver config file")
    local.add_argument("--schemas", help="a local folder of schemas in Iglu layout")
    local.add_argument("--max-events", type=int, help="events kept in memory (default 10000)")
    local.add_argument(
        "--enrichments", help="a folder of enrichment config files in upstream's JSON format"
    )
    local.add_argument(
        "--output-tsv",
        action="store_true",
        default=None,
        help="print each enriched event to stdout as a TSV line",
    )
    local.set_defaults(run=_run_local)
    _add_sink(commands)
    _add_enrich(commands)
    _add_collector(commands)
    _add_operator(commands)
    return parser


def _run_local(args: argparse.Namespace) -> int:
    from snowplow_pipeline import local
    from snowplow_pipeline.enrich import enrichments
    from snowplow_pipeline.iglu import resolving

    names = ("host", "port", "iglu_resolver", "schemas", "max_events", "output_tsv", "enrichments")
    try:
        settings = local.LocalSettings(**_given(args, *names))
    except pydantic.ValidationError as exc:
        print(_local_problems(exc), file=sys.stderr)
        return 2
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(local.run(settings))
    except (enrichments.EnrichmentConfigError, resolving.ResolverConfigError) as exc:
        print(f"Invalid configuration (--iglu, --schemas or --enrichments): {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"Cannot listen on {settings.host}:{settings.port} (--host, --port): {exc}",
            file=sys.stderr,
        )
        return 2
    return 0


_LOCAL_FLAGS = {"iglu_resolver": "--iglu"}


def _local_problems(exc: pydantic.ValidationError) -> str:
    """Each problem with the flag and the environment variable that set it."""
    lines = [f"Invalid settings ({_count(exc.error_count(), 'problem')}):"]
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        flag = _LOCAL_FLAGS.get(field, "--" + field.replace("_", "-"))
        lines.append(
            f"  {flag} / SNOWPLOW_MINI_{field.upper()}: {error['msg']} "
            f"(got {str(error.get('input'))[:60]!r})"
        )
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _add_sink(commands: Any) -> None:
    sink = commands.add_parser(
        "sink", help="Index enriched events (good) or bad rows (bad) from nsqd into Elasticsearch."
    )
    sink.add_argument("kind", choices=["good", "bad"], help="which topics and index")
    sink.add_argument(
        "--nsqd-tcp-address",
        action="append",
        dest="nsqd_tcp_addresses",
        help="nsqd TCP address to consume from (repeatable; default 127.0.0.1:4150)",
    )
    sink.add_argument(
        "--lookupd-http-address",
        action="append",
        dest="lookupd_http_addresses",
        help="nsqlookupd HTTP address to find nsqd (repeatable)",
    )
    sink.add_argument("--nsqd-http-address", help="nsqd HTTP address to publish failures to")
    sink.add_argument(
        "--elasticsearch-url",
        action="append",
        dest="urls",
        help="Elasticsearch URL (repeatable; default http://127.0.0.1:9200)",
    )
    sink.add_argument("--index", dest="name", help="index to write to (default: the kind)")
    sink.add_argument("--host", help="address of /health and /metrics (default 127.0.0.1)")
    sink.add_argument("--port", type=int, help="port of /health and /metrics (default 8090)")
    sink.set_defaults(run=_run_sink)


def _run_sink(args: argparse.Namespace) -> int:
    from snowplow_pipeline.sink import service
    from snowplow_pipeline.sink import settings as sink_settings

    groups = {
        "nsq": _given(args, "nsqd_tcp_addresses", "lookupd_http_addresses", "nsqd_http_address"),
        "elasticsearch": _given(args, "urls"),
        "index": _given(args, "name"),
    }
    overrides = {name: group for name, group in groups.items() if group}
    try:
        settings = sink_settings.load(kind=args.kind, **overrides, **_given(args, "host", "port"))
    except sink_settings.InvalidSettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    # The client logs every request at INFO; a sink sends several a second.
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    asyncio.run(service.run_on_nsq(settings))
    return 0


def _add_enrich(commands: Any) -> None:
    enrich = commands.add_parser(
        "enrich", help="Enrich collector payloads from nsqd into enriched events and bad rows."
    )
    enrich.add_argument(
        "--nsqd-tcp-address",
        action="append",
        dest="nsqd_tcp_addresses",
        help="nsqd TCP address to consume from (repeatable; default 127.0.0.1:4150)",
    )
    enrich.add_argument(
        "--lookupd-http-address",
        action="append",
        dest="lookupd_http_addresses",
        help="nsqlookupd HTTP address to find nsqd (repeatable)",
    )
    enrich.add_argument("--nsqd-http-address", help="nsqd HTTP address to publish to")
    enrich.add_argument("--iglu", dest="iglu_resolver", help="a Snowplow resolver config file")
    enrich.add_argument("--enrichments", help="a folder of enrichment configs")
    enrich.add_argument("--max-in-flight", type=int, help="payloads enriched at once")
    enrich.add_argument("--host", help="address of /health and /metrics (default 127.0.0.1)")
    enrich.add_argument("--port", type=int, help="port of /health and /metrics (default 8081)")
    enrich.set_defaults(run=_run_enrich)


def _run_enrich(args: argparse.Namespace) -> int:
    from snowplow_pipeline.enrich import enrichments, service
    from snowplow_pipeline.enrich import settings as enrich_settings
    from snowplow_pipeline.iglu import resolving

    nsq_group = _given(
        args, "nsqd_tcp_addresses", "lookupd_http_addresses", "nsqd_http_address", "max_in_flight"
    )
    overrides = _given(args, "iglu_resolver", "enrichments", "host", "port")
    try:
        settings = enrich_settings.load(**overrides, **({"nsq": nsq_group} if nsq_group else {}))
        asyncio.run(service.run(settings))
    except (
        enrich_settings.InvalidSettingsError,
        resolving.ResolverConfigError,
        enrichments.EnrichmentConfigError,
    ) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _add_collector(commands: Any) -> None:
    collector = commands.add_parser(
        "collector", help="Collect events from trackers and publish collector payloads to nsqd."
    )
    collector.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    collector.add_argument("--port", type=int, help="port to listen on (default 8080)")
    collector.add_argument("--nsqd-http-address", help="nsqd HTTP address to publish to")
    collector.set_defaults(run=_run_collector)


def _run_collector(args: argparse.Namespace) -> int:
    from snowplow_pipeline.collector import service
    from snowplow_pipeline.collector import settings as collector_settings

    overrides = _given(args, "host", "port")
    if args.nsqd_http_address is not None:
        overrides["nsq"] = {"nsqd_http_address": args.nsqd_http_address}
    try:
        settings = collector_settings.CollectorSettings(**overrides)
    except pydantic.ValidationError as exc:
        print(env_problems(exc, prefix=collector_settings.ENV_PREFIX), file=sys.stderr)
        return 2

    async def serve() -> None:
        async with settings.nsq.build_publisher() as publisher:
            await _run_until_signal(service.serve(settings, publisher))

    asyncio.run(serve())
    return 0


def _add_operator(commands: Any) -> None:
    operator = commands.add_parser(
        "operator", help="Run the Kubernetes operator that reconciles SnowplowMini resources."
    )
    operator.add_argument(
        "--namespace",
        "-n",
        action="append",
        dest="namespaces",
        help="namespace to watch (repeatable; default: all namespaces)",
    )
    operator.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, $KUBECONFIG)")
    operator.add_argument("--workers", type=int, help="reconciles at the same time (default 4)")
    operator.add_argument(
        "--resync-seconds", type=float, help="reconcile every mini this often (default 300)"
    )
    operator.add_argument("--metrics-host", help="address of /metrics (default 127.0.0.1)")
    operator.add_argument("--metrics-port", type=int, help="port of /metrics (default 0: off)")
    operator.add_argument("--liveness-url", help="kopf liveness endpoint, e.g. http://h:p/healthz")
    operator.set_defaults(run=_run_operator)


def _run_operator(args: argparse.Namespace) -> int:
    # Imported here: kopf and the Kubernetes client are needed by this subcommand only.
    from snowplow_operator import running

    names = ("namespaces", "kubeconfig", "workers", "resync_seconds", "metrics_host")
    settings = running.OperatorSettings(**_given(args, *names, "metrics_port", "liveness_url"))
    running.run(settings)
    return 0


async def _run_until_signal(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until SIGTERM or SIGINT cancels it (it drains on cancellation)."""
    task = asyncio.create_task(work)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def env_problems(exc: pydantic.ValidationError, *, prefix: str) -> str:
    """Each problem of ``exc`` with the environment variable that sets the field."""
    lines = [f"Invalid settings ({_count(exc.error_count(), 'problem')}):"]
    for error in exc.errors():
        names = [part for part in error["loc"] if isinstance(part, str)]
        received = repr(error.get("input"))
        received = received if len(received) <= 60 else received[:57] + "..."
        lines.append(f"  {prefix}{'__'.join(names).upper()}: {error['msg']} (got {received})")
    return "\n".join(lines)


def _given(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The flags the user gave, so that unset flags leave environment values alone."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def settings_problems(exc: pydantic.ValidationError) -> str:
    lines = [f"Invalid settings ({_count(exc.error_count(), 'problem')}):"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        lines.append(f"  {where}: {error['msg']} (got {error.get('input')!r})")
    return "\n".join(lines)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(*, json_lines: bool, level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        _JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
