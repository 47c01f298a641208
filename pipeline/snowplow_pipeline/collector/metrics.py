"""Prometheus metrics of one collector app, in a registry of its own.

Each app gets its own ``CollectorRegistry`` (or one the caller passes), never the process-wide
default: tests build many apps in one process, and the local Mini may serve the metrics of all
its components from one registry. Label values are bounded: routes are labelled by their
template (``/{vendor}/{version}``), never by the path a client sent.
"""

from __future__ import annotations

import dataclasses

import prometheus_client
from aiohttp import web


@dataclasses.dataclass(frozen=True, slots=True)
class CollectorMetrics:
    registry: prometheus_client.CollectorRegistry
    requests: prometheus_client.Counter
    messages: prometheus_client.Counter
    message_bytes: prometheus_client.Counter
    publish_failures: prometheus_client.Counter
    publish_seconds: prometheus_client.Histogram

    @classmethod
    def create(
        cls, registry: prometheus_client.CollectorRegistry | None = None
    ) -> CollectorMetrics:
        registry = registry or prometheus_client.CollectorRegistry()
        return cls(
            registry=registry,
            requests=prometheus_client.Counter(
                "collector_requests",
                "HTTP requests answered, by method, route template and status.",
                ["method", "route", "status"],
                registry=registry,
            ),
            messages=prometheus_client.Counter(
                "collector_messages",
                "Messages published: collector payloads to RawEvents, bad rows to BadRawEvents.",
                ["topic"],
                registry=registry,
            ),
            message_bytes=prometheus_client.Counter(
                "collector_message_bytes",
                "Bytes of the messages published, by topic.",
                ["topic"],
                registry=registry,
            ),
            publish_failures=prometheus_client.Counter(
                "collector_publish_failures",
                "Publish calls the transport refused (each answered with 503).",
                ["topic"],
                registry=registry,
            ),
            publish_seconds=prometheus_client.Histogram(
                "collector_publish_seconds",
                "Time taken by each publish call, successful or not.",
                ["topic"],
                registry=registry,
            ),
        )

    def render(self) -> web.Response:
        """The ``/metrics`` answer in Prometheus' text format."""
        return web.Response(
            body=prometheus_client.generate_latest(self.registry),
            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST},
        )
