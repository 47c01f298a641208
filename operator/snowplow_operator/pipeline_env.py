"""The one mapping from a SnowplowMini spec to the pipeline processes' commands and environment.

The collector, enrich and the two sinks are the ``snowplow-mini`` command of our pipeline image,
configured only through ``SNOWPLOW_COLLECTOR_*``, ``SNOWPLOW_ENRICH_*`` and ``SNOWPLOW_SINK_*``
variables (pydantic-settings, nested groups joined by ``__``). Everything the pipeline expects
from its environment is decided here and nowhere else, so aligning with a renamed setting is a
change to this module and its tests. The variables go into one ConfigMap per component
(``envFrom``), whose content hash rolls exactly that component's Deployment.

The NSQ wiring follows Snowplow Mini: the collector publishes to ``RawEvents`` (and
``BadRawEvents``), enrich reads ``RawEvents`` and writes ``EnrichedEvents`` and
``BadEnrichedEvents``, and each sink reads one of those on its own channel (``ESLoaderChannelGood``,
``ESLoaderChannelBad``) into its own index. Topic names are fixed in the pipeline; the operator
sets only addresses, the sink kind, channels and index names. The names follow
``snowplow_pipeline.{collector,enrich,sink}.settings`` and the collector command's NSQ group;
tests/operator/test_pipeline_env.py loads the rendered variables into those settings classes.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

from snowplow_operator import specs

COMMAND = "snowplow-mini"
CONFIG_ROOT = "/etc/snowplow"
RESOLVER_FILE = "resolver.json"
RESOLVER_DIR = f"{CONFIG_ROOT}/iglu"
ENRICHMENTS_DIR = f"{CONFIG_ROOT}/enrichments"
COLLECTOR_PORT = 8080

ENRICH_HEALTH_PORT = 8081
SINK_HEALTH_PORT = 8090
SINK_CHANNELS = {"good": "ESLoaderChannelGood", "bad": "ESLoaderChannelBad"}

SinkKind = Literal["good", "bad"]


@dataclasses.dataclass(frozen=True)
class Process:
    """How one pipeline container starts: its arguments and its environment variables."""

    args: tuple[str, ...]
    env: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Wiring:
    """Addresses of the mini's own services, as the pipeline processes reach them."""

    nsqd_tcp_address: str
    nsqd_http_address: str
    elasticsearch_url: str


def collector(spec: specs.Collector, wiring: Wiring) -> Process:
    cookie = spec.cookie
    env = {
        "HOST": "0.0.0.0",
        "PORT": str(COLLECTOR_PORT),
        # The collector only publishes, which nsqd takes over HTTP.
        "NSQ__NSQD_HTTP_ADDRESS": wiring.nsqd_http_address,
        "COOKIE__ENABLED": _bool(cookie.enabled),
        "COOKIE__NAME": cookie.name,
        "COOKIE__DOMAINS": json.dumps(cookie.domains),
        "COOKIE__SAME_SITE": cookie.same_site,
        "COOKIE__SECURE": _bool(cookie.secure),
        "COOKIE__HTTP_ONLY": _bool(cookie.http_only),
        "COOKIE__EXPIRATION_DAYS": str(cookie.expiration_days),
    }
    if cookie.fallback_domain:
        env["COOKIE__FALLBACK_DOMAIN"] = cookie.fallback_domain
    # Free-form settings come last but may not replace the wiring (the spec parser refuses).
    env.update(spec.settings)
    return Process(args=_args("collector"), env=_prefixed("SNOWPLOW_COLLECTOR_", env))


def enrich(wiring: Wiring) -> Process:
    env = {
        "HOST": "0.0.0.0",
        "PORT": str(ENRICH_HEALTH_PORT),
        **_nsq(wiring),
        "IGLU_RESOLVER": f"{RESOLVER_DIR}/{RESOLVER_FILE}",
        "ENRICHMENTS": ENRICHMENTS_DIR,
    }
    return Process(args=_args("enrich"), env=_prefixed("SNOWPLOW_ENRICH_", env))


def sink(kind: SinkKind, wiring: Wiring) -> Process:
    """The sink of ``kind``; its topic follows from the kind (``SinkSettings.kind``)."""
    env = {
        "KIND": kind,
        "HOST": "0.0.0.0",
        "PORT": str(SINK_HEALTH_PORT),
        **_nsq(wiring),
        "NSQ__CHANNEL": SINK_CHANNELS[kind],
        "ELASTICSEARCH__URLS": json.dumps([wiring.elasticsearch_url]),
        "INDEX__NAME": kind,
    }
    # The command takes the kind as its argument too; both say the same.
    return Process(args=(*_args("sink"), kind), env=_prefixed("SNOWPLOW_SINK_", env))


def _args(subcommand: str) -> tuple[str, ...]:
    return (COMMAND, "--log-format", "json", subcommand)


def _nsq(wiring: Wiring) -> dict[str, str]:
    """Consume over TCP from the one nsqd, publish (bad rows, failures) over its HTTP API."""
    return {
        "NSQ__NSQD_TCP_ADDRESSES": json.dumps([wiring.nsqd_tcp_address]),
        "NSQ__NSQD_HTTP_ADDRESS": wiring.nsqd_http_address,
    }


def _prefixed(prefix: str, env: dict[str, str]) -> dict[str, str]:
    return {prefix + name: value for name, value in env.items()}


def _bool(value: bool) -> str:
    return "true" if value else "false"
