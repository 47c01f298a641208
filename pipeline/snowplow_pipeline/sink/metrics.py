"""Prometheus metrics of one sink, in a registry of its own (as the collector does).

Label values are bounded: topics and indexes come from the settings, outcomes from a fixed
set, and rejection reasons are Elasticsearch's error types (``document_parsing_exception``),
never its free-text reasons.
"""

from __future__ import annotations

import dataclasses

import prometheus_client
from aiohttp import web


@dataclasses.dataclass(frozen=True, slots=True)
class SinkMetrics:
    registry: prometheus_client.CollectorRegistry
    messages: prometheus_client.Counter
    bulk_requests: prometheus_client.Counter
    bulk_seconds: prometheus_client.Histogram
    bulk_documents: prometheus_client.Histogram
    rejected_documents: prometheus_client.Counter
    elasticsearch_up: prometheus_client.Gauge
    documents_waiting: prometheus_client.Gauge

    @classmethod
    def create(cls, registry: prometheus_client.CollectorRegistry | None = None) -> SinkMetrics:
        registry = registry or prometheus_client.CollectorRegistry()
        return cls(
            registry=registry,
            messages=prometheus_client.Counter(
                "sink_messages",
                "Messages handled, by topic and outcome: indexed, routed (to the failure "
                "topic) or requeued (Elasticsearch or the transport unavailable).",
                ["topic", "outcome"],
                registry=registry,
            ),
            bulk_requests=prometheus_client.Counter(
                "sink_bulk_requests",
                "Bulk requests sent, by outcome: ok, or retry (a transient failure).",
                ["outcome"],
                registry=registry,
            ),
            bulk_seconds=prometheus_client.Histogram(
                "sink_bulk_seconds",
                "Time taken by each bulk request, successful or not.",
                registry=registry,
            ),
            bulk_documents=prometheus_client.Histogram(
                "sink_bulk_documents",
                "Documents in each bulk request.",
                buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000),
                registry=registry,
            ),
            rejected_documents=prometheus_client.Counter(
                "sink_rejected_documents",
                "Documents Elasticsearch refused for good, by index and error type.",
                ["index", "error_type"],
                registry=registry,
            ),
            documents_waiting=prometheus_client.Gauge(
                "sink_documents_waiting",
                "Documents whose handlers wait for Elasticsearch's answer (open batch included).",
                registry=registry,
            ),
            elasticsearch_up=prometheus_client.Gauge(
                "sink_elasticsearch_up",
                "1 when the last request to Elasticsearch got an answer, 0 when it did not.",
                registry=registry,
            ),
        )

    def render(self) -> web.Response:
        """The ``/metrics`` answer in Prometheus' text format."""
        return web.Response(
            body=prometheus_client.generate_latest(self.registry),
            headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST},
        )
