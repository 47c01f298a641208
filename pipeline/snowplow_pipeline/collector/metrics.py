"""Prometheus metrics of one collector app, in a registry of its own.

Each app gets its own ``CollectorRegistry`` (or one the caller passes), never the process-wide
default: tests build many apps in one process, and the local Mini may serve the metrics of all
its components from one registry. Label values are bounded: routes are labelled by their
template (``/{vendor}/{version}``), never by the path a client sent.

The hot path goes through ``count_request`` and ``count_published``, which keep each labelled
child once made: ``labels()`` hashes and validates its arguments on every call, and a pixel
request would pay that five times.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import prometheus_client
from aiohttp import web

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


@dataclasses.dataclass(frozen=True, slots=True)
class CollectorMetrics:
    registry: prometheus_client.CollectorRegistry
    requests: prometheus_client.Counter
    messages: prometheus_client.Counter
    message_bytes: prometheus_client.Counter
    publish_failures: prometheus_client.Counter
    publish_seconds: prometheus_client.Histogram
    _children: dict[tuple[Any, ...], Any] = dataclasses.field(default_factory=dict)

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

    def count_request(self, method: str, route: str, status: int) -> None:
        """One answered request; ``route`` is a template or another bounded name.

        A client may send any token as its method; those outside HTTP's usual ones are all
        labelled ``other``, so a client cannot make the label set grow.
        """
        if method not in _METHODS:
            method = "other"
        key = ("requests", method, route, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(method, route, str(status))
        child.inc()

    def count_published(self, topic: str, messages: list[bytes], *, seconds: float) -> None:
        """A publish call the transport accepted: its messages, their bytes, its duration."""
        children = self._children.get(("published", topic))
        if children is None:
            children = self._children[("published", topic)] = (
                self.messages.labels(topic),
                self.message_bytes.labels(topic),
                self.publish_seconds.labels(topic),
            )
        count, size, duration = children
        count.inc(len(messages))
        size.inc(sum(map(len, messages)))
        duration.observe(seconds)

    def count_publish_failure(self, topic: str, *, seconds: float) -> None:
        self.publish_failures.labels(topic).inc()
        self.publish_seconds.labels(topic).observe(seconds)

    def render(self) -> web.Response:
        """The ``/metrics`` answer in Prometheus' text format."""
        return web.Response(
            body=prometheus_client.generate_latest(self.registry),
            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST},
        )
