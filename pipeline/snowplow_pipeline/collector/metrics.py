"""Prometheus metrics of one collector app, in a registry of its own.

Each app gets its own ``CollectorRegistry`` (or one the caller passes), never the process-wide
default: tests build many apps in one process, and the local Mini may serve the metrics of all
its components from one registry. Label values are bounded: routes are labelled by their
template (``/{vendor}/{version}``), never by the path a client sent, and methods outside
HTTP's usual ones are all ``other``.

The counts are plain integers kept by the request path and turned into metric families only
when ``/metrics`` is scraped (a custom collector, in prometheus_client's terms). A labelled
``Counter`` takes a lock and checks its arguments on every update; a pixel request makes five
updates, and at thousands of requests a second on one core that was a tenth of its time. The
collector runs on one event loop, so nothing here needs a lock.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
from collections.abc import Iterator

import prometheus_client
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

# Seconds; the upper bounds of prometheus_client's default histogram, +Inf left implicit.
PUBLISH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


@dataclasses.dataclass(slots=True)
class _Durations:
    """One histogram series: a count per bucket (the last is +Inf) and the sum."""

    counts: list[int] = dataclasses.field(
        default_factory=lambda: [0] * (len(PUBLISH_SECONDS_BUCKETS) + 1)
    )
    total_seconds: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(PUBLISH_SECONDS_BUCKETS, seconds)] += 1
        self.total_seconds += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        bounds = [*map(str, PUBLISH_SECONDS_BUCKETS), "+Inf"]
        running = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip(bounds, self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets


class CollectorMetrics:
    """Requests answered, messages and bytes published, publish failures and durations."""

    def __init__(self, registry: prometheus_client.CollectorRegistry) -> None:
        self.registry = registry
        self._requests: collections.Counter[tuple[str, str, int]] = collections.Counter()
        self._messages: collections.Counter[str] = collections.Counter()
        self._message_bytes: collections.Counter[str] = collections.Counter()
        self._publish_failures: collections.Counter[str] = collections.Counter()
        self._publish_seconds: collections.defaultdict[str, _Durations] = collections.defaultdict(
            _Durations
        )
        registry.register(self)

    @classmethod
    def create(
        cls, registry: prometheus_client.CollectorRegistry | None = None
    ) -> CollectorMetrics:
        return cls(registry or prometheus_client.CollectorRegistry())

    def count_request(self, method: str, route: str, status: int) -> None:
        """One answered request; ``route`` is a template or another bounded name."""
        if method not in _METHODS:
            method = "other"
        self._requests[method, route, status] += 1

    def count_published(self, topic: str, messages: list[bytes], *, seconds: float) -> None:
        """A publish call the transport accepted: its messages, their bytes, its duration."""
        self._messages[topic] += len(messages)
        self._message_bytes[topic] += sum(map(len, messages))
        self._publish_seconds[topic].observe(seconds)

    def count_publish_failure(self, topic: str, *, seconds: float) -> None:
        self._publish_failures[topic] += 1
        self._publish_seconds[topic].observe(seconds)

    def describe(self) -> list[Metric]:
        """The families this collector yields, so the registry refuses a second one's names."""
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        """The metric families, as the registry asks for them at each scrape."""
        requests = CounterMetricFamily(
            "collector_requests",
            "HTTP requests answered, by method, route template and status.",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in sorted(self._requests.items()):
            requests.add_metric([method, route, str(status)], count)
        yield requests
        yield _by_topic(
            "collector_messages",
            "Messages published: collector payloads to RawEvents, bad rows to BadRawEvents.",
            self._messages,
        )
        yield _by_topic(
            "collector_message_bytes",
            "Bytes of the messages published, by topic.",
            self._message_bytes,
        )
        yield _by_topic(
            "collector_publish_failures",
            "Publish calls the transport refused (each answered with 503).",
            self._publish_failures,
        )
        durations = HistogramMetricFamily(
            "collector_publish_seconds",
            "Time taken by each publish call, successful or not.",
            labels=["topic"],
        )
        for topic, series in sorted(self._publish_seconds.items()):
            durations.add_metric([topic], series.cumulative(), series.total_seconds)
        yield durations

    def render(self) -> web.Response:
        """The ``/metrics`` answer in Prometheus' text format."""
        return web.Response(
            body=prometheus_client.generate_latest(self.registry),
            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST},
        )


def _by_topic(name: str, documentation: str, counts: collections.Counter[str]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=["topic"])
    for topic, count in sorted(counts.items()):
        family.add_metric([topic], count)
    return family
