"""Prometheus metrics of the operator, served on their own port (kopf has no metrics endpoint).

No label carries a SnowplowMini's name, owner or branch: with one sandbox per branch those
would grow without bound.
"""

from __future__ import annotations

import datetime

import prometheus_client

REGISTRY = prometheus_client.CollectorRegistry()

RECONCILES = prometheus_client.Counter(
    "snowplowmini_reconcile",
    "Reconciles of a SnowplowMini, by result (success, error).",
    ["result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = prometheus_client.Histogram(
    "snowplowmini_reconcile_duration_seconds",
    "How long one reconcile took, API calls included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
TIME_TO_READY_SECONDS = prometheus_client.Histogram(
    "snowplowmini_time_to_ready_seconds",
    "Time from a SnowplowMini's creation to its first Ready=True.",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200),
    registry=REGISTRY,
)
MINIS = prometheus_client.Gauge(
    "snowplowmini_minis", "SnowplowMinis the operator currently knows of.", registry=REGISTRY
)
QUEUE_DEPTH = prometheus_client.Gauge(
    "snowplowmini_queue_depth", "SnowplowMinis waiting for a reconcile.", registry=REGISTRY
)


def observe_time_to_ready(created: str) -> None:
    """Record the time since ``created`` (the API's ``creationTimestamp``) as time to Ready."""
    since = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    seconds = (datetime.datetime.now(datetime.UTC) - since).total_seconds()
    TIME_TO_READY_SECONDS.observe(max(seconds, 0.0))


def serve(*, host: str, port: int) -> None:
    """Serve ``/metrics`` from a daemon thread."""
    prometheus_client.start_http_server(port, addr=host, registry=REGISTRY)
