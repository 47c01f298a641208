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
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
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
    _add_sandbox(commands)
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
        settings = collector_settings.load(**overrides)
    except collector_settings.InvalidSettingsError as exc:
        print(exc, file=sys.stderr)
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
    operator.add_argument("--max-ttl", help="cap on every sandbox's life, e.g. 7d (default: none)")
    operator.add_argument(
        "--expiry-action", choices=["delete", "suspend"], help="at expiry (default delete)"
    )
    operator.add_argument(
        "--expiry-warning-seconds", type=float, help="warn this long before expiry (default 600)"
    )
    operator.add_argument(
        "--sweep-interval-seconds", type=float, help="look for expired sandboxes (default 30)"
    )
    operator.set_defaults(run=_run_operator)


def _run_operator(args: argparse.Namespace) -> int:
    # Imported here: kopf and the Kubernetes client are needed by this subcommand only.
    from snowplow_operator import running

    names = ("namespaces", "kubeconfig", "workers", "resync_seconds", "metrics_host")
    lifecycle_names = (
        "max_ttl",
        "expiry_action",
        "expiry_warning_seconds",
        "sweep_interval_seconds",
    )
    settings = running.OperatorSettings(
        **_given(args, *names, "metrics_port", "liveness_url", *lifecycle_names)
    )
    running.run(settings)
    return 0


def _add_sandbox(commands: Any) -> None:
    """``sandbox create|list|wait|url|events|delete``, implemented in ``sandboxes``."""
    sandbox = commands.add_parser(
        "sandbox",
        help="Create, wait for, inspect and delete per-branch SnowplowMinis (for CI).",
        description="Exit codes: 0 ok, 1 failed or timed out, 2 usage or configuration error, "
        "3 not found. See docs/sandboxes.md.",
    )
    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument(
        "--kubeconfig", help="kubeconfig file (default $KUBECONFIG, ~/.kube/config)"
    )
    cluster.add_argument("--context", help="kubeconfig context (default: the current one)")
    cluster.add_argument("--namespace", "-n", help="namespace (default: the context's)")
    named = argparse.ArgumentParser(add_help=False, parents=[cluster])
    named.add_argument("name", nargs="?", help="sandbox name (or give --branch)")
    named.add_argument("--branch", help="the branch whose sandbox is meant (name by the rule)")
    actions = sandbox.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", parents=[cluster], help="Create or update (idempotent).")
    create.add_argument("branch", help="git branch name; the sandbox name follows from it")
    create.add_argument("--name", help="use this name instead of the one derived from the branch")
    create.add_argument("--owner", help="person or team (a label value)")
    create.add_argument("--repository", help="e.g. acme/shop")
    create.add_argument("--pull-request", type=int, help="pull request number")
    create.add_argument("--commit", help="commit SHA (7-40 hex characters)")
    lifetime = create.add_mutually_exclusive_group()
    lifetime.add_argument("--ttl", help="expire this long after creation, e.g. 72h")
    lifetime.add_argument("--expires-at", help="expire at this RFC 3339 time")
    create.add_argument(
        "--persistent", action="store_true", help="keep Elasticsearch data on a volume claim"
    )
    create.add_argument("--wait", action="store_true", help="then wait until it is Ready")
    create.add_argument("--timeout", type=float, default=600.0, help="for --wait (seconds)")
    create.set_defaults(run=_run_sandbox_create)

    listing = actions.add_parser("list", parents=[cluster], help="List sandboxes.")
    listing.add_argument("--selector", "-l", help="label selector, e.g. snowplowmini.dev/owner=a")
    listing.add_argument("--all-namespaces", "-A", action="store_true")
    listing.add_argument("--output", "-o", choices=["table", "json"], default="table")
    listing.set_defaults(run=_run_sandbox_list)

    wait = actions.add_parser("wait", parents=[named], help="Wait until Ready, showing progress.")
    wait.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    wait.set_defaults(run=_run_sandbox_wait)

    url = actions.add_parser("url", parents=[named], help="Print the collector URL.")
    url.add_argument(
        "--component",
        choices=["collector", "kibana", "elasticsearch", "nsqadmin"],
        default="collector",
    )
    url.set_defaults(run=_run_sandbox_url)

    events = actions.add_parser(
        "events", parents=[named], help="Counts as /micro/all, or items with --good/--bad."
    )
    shown = events.add_mutually_exclusive_group()
    shown.add_argument(
        "--good",
        dest="kind",
        action="store_const",
        const="good",
        help="good events, as /micro/good",
    )
    shown.add_argument(
        "--bad", dest="kind", action="store_const", const="bad", help="bad rows, as /micro/bad"
    )
    events.set_defaults(kind="all")
    events.add_argument("--event-type", help="good: only this event type, e.g. page_view")
    events.add_argument("--schema", help="good: only events of this Iglu schema URI")
    events.add_argument(
        "--entity",
        action="append",
        dest="contexts",
        help="good: with this entity's schema URI, as Micro's contexts filter (repeatable)",
    )
    events.add_argument("--vendor", help="bad: only rows sent to this API vendor")
    events.add_argument("--version", help="bad: only rows sent to this API version")
    events.add_argument("--limit", type=int, help="at most this many items")
    events.add_argument(
        "--elasticsearch-url",
        help="ask this Elasticsearch instead of the sandbox's through the API server's "
        "service proxy (env SNOWPLOW_SANDBOX_ELASTICSEARCH_URL), e.g. a port-forward",
    )
    events.add_argument("--good-index", default="good", help="(default good)")
    events.add_argument("--bad-index", default="bad", help="(default bad)")
    events.add_argument(
        "--fail-on-bad", action="store_true", help="exit 1 when the sandbox holds any bad row"
    )
    events.set_defaults(run=_run_sandbox_events)

    delete = actions.add_parser("delete", parents=[named], help="Delete the sandbox.")
    delete.add_argument("--wait", action="store_true", help="until it is gone")
    delete.add_argument("--timeout", type=float, default=120.0, help="for --wait (seconds)")
    delete.add_argument(
        "--ignore-not-found", action="store_true", help="exit 0 when there is no such sandbox"
    )
    delete.set_defaults(run=_run_sandbox_delete)


def _sandbox_command(work: Callable[[argparse.Namespace, Any], int]) -> Any:
    """Connect as kubectl would, run ``work``, and turn its errors into exit codes."""

    def run(args: argparse.Namespace) -> int:
        # Imported here: the Kubernetes client is needed by this subcommand only.
        from snowplow_operator import sandboxes

        try:
            if getattr(args, "name", "-") is None and getattr(args, "branch", None) is None:
                raise sandboxes.SandboxError(
                    "give the sandbox name or --branch", exit_code=sandboxes.USAGE
                )
            target = sandboxes.connect(
                kubeconfig=args.kubeconfig,
                context=args.context,
                namespace=args.namespace,
                all_namespaces=getattr(args, "all_namespaces", False),
                environ=dict(os.environ),
            )
            return work(args, target)
        except sandboxes.SandboxError as exc:
            print(f"sandbox {args.action}: {exc}", file=sys.stderr)
            return exc.exit_code

    return run


def _sandbox_name(args: argparse.Namespace) -> str:
    from snowplow_operator import slugs

    return args.name or slugs.sandbox_name(args.branch)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@_sandbox_command
def _run_sandbox_create(args: argparse.Namespace, target: Any) -> int:
    from snowplow_operator import sandboxes

    spec: dict[str, Any] = {}
    if args.ttl or args.expires_at:
        spec["lifecycle"] = {"ttl": args.ttl} if args.ttl else {"expiresAt": args.expires_at}
    if args.persistent:
        spec["elasticsearch"] = {"storage": {"persistent": True}}
    source = sandboxes.Source(
        branch=args.branch,
        owner=args.owner,
        repository=args.repository,
        pull_request=args.pull_request,
        commit=args.commit,
    )
    mini = sandboxes.create(target, source=source, name=args.name, spec=spec)
    name = mini["metadata"]["name"]
    if args.wait:
        sandboxes.wait_ready(target, name, timeout_seconds=args.timeout, progress=_progress)
    print(name)
    return 0


@_sandbox_command
def _run_sandbox_list(args: argparse.Namespace, target: Any) -> int:
    from snowplow_operator import sandboxes

    rows = [sandboxes.summary(mini) for mini in sandboxes.list_all(target, selector=args.selector)]
    if args.output == "json":
        print(json.dumps(rows, indent=2))
        return 0
    columns = ["namespace", "name", "ready", "reason", "branch", "pullRequest", "expiresAt"]
    table = [[c.upper() for c in columns]] + [
        ["" if row[c] is None else str(row[c]) for c in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    return 0


@_sandbox_command
def _run_sandbox_wait(args: argparse.Namespace, target: Any) -> int:
    from snowplow_operator import sandboxes

    name = _sandbox_name(args)
    sandboxes.wait_ready(target, name, timeout_seconds=args.timeout, progress=_progress)
    _progress(f"{name}: Ready")
    return 0


@_sandbox_command
def _run_sandbox_url(args: argparse.Namespace, target: Any) -> int:
    from snowplow_operator import sandboxes

    print(sandboxes.endpoint(sandboxes.get(target, _sandbox_name(args)), args.component))
    return 0


@_sandbox_command
def _run_sandbox_events(args: argparse.Namespace, target: Any) -> int:
    from snowplow_operator import sandbox_events, sandboxes

    name = _sandbox_name(args)
    mini = sandboxes.get(target, name)
    url = args.elasticsearch_url or os.environ.get("SNOWPLOW_SANDBOX_ELASTICSEARCH_URL")
    if url:
        post = sandbox_events.direct(url)
    else:
        service = f"{mini['metadata']['name']}-elasticsearch"
        post = sandbox_events.through_service_proxy(
            target.api, namespace=mini["metadata"]["namespace"], service=service
        )
    try:
        counts = sandbox_events.counts(post, good_index=args.good_index, bad_index=args.bad_index)
        if args.kind == "good":
            answer: Any = sandbox_events.good(
                post,
                index=args.good_index,
                event_type=args.event_type,
                schema=args.schema,
                contexts=args.contexts,
                limit=args.limit,
            )
        elif args.kind == "bad":
            answer = sandbox_events.bad(
                post,
                index=args.bad_index,
                vendor=args.vendor,
                version=args.version,
                limit=args.limit,
            )
        else:
            answer = counts
    except sandbox_events.FilterError as exc:
        raise sandboxes.SandboxError(str(exc), exit_code=sandboxes.USAGE) from exc
    except sandbox_events.SearchError as exc:
        raise sandboxes.SandboxError(str(exc)) from exc
    print(json.dumps(answer, indent=2))
    if args.fail_on_bad and counts["bad"]:
        _progress(f"{name}: {counts['bad']} bad rows (--fail-on-bad)")
        return 1
    return 0


@_sandbox_command
def _run_sandbox_delete(args: argparse.Namespace, target: Any) -> int:
    from snowplow_operator import sandboxes

    name = _sandbox_name(args)
    try:
        sandboxes.delete(target, name, wait_seconds=args.timeout if args.wait else None)
    except sandboxes.SandboxError as exc:
        if exc.exit_code == sandboxes.NOT_FOUND and args.ignore_not_found:
            return 0
        raise
    _progress(f"{name}: deleted")
    return 0


async def _run_until_signal(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` until SIGTERM or SIGINT cancels it (it drains on cancellation)."""
    task = asyncio.create_task(work)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
