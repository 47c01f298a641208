"""The collector's metrics as a scraper reads them: valid exposition, bounded labels."""

from __future__ import annotations

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from snowplow_pipeline.collector.metrics import CollectorMetrics


def scrape(metrics: CollectorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = prometheus_client.generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_publish_durations_fall_in_cumulative_buckets_with_upper_bounds_inclusive() -> None:
    metrics = CollectorMetrics.create()
    for seconds in (0.001, 0.005, 0.0051, 0.3, 60.0):
        metrics.count_published("RawEvents", [b"abc"], seconds=seconds)
    metrics.count_publish_failure("RawEvents", seconds=0.02)

    samples = scrape(metrics)

    def bucket(bound: str) -> float:
        return samples[
            ("collector_publish_seconds_bucket", (("le", bound), ("topic", "RawEvents")))
        ]

    assert [bucket(b) for b in ("0.005", "0.01", "0.025", "0.25", "0.5", "5.0", "+Inf")] == [
        2,
        3,
        4,
        4,
        5,
        5,
        6,
    ]
    assert samples[("collector_publish_seconds_count", (("topic", "RawEvents"),))] == 6
    assert (
        abs(samples[("collector_publish_seconds_sum", (("topic", "RawEvents"),))] - 60.3311) < 1e-9
    )
    assert samples[("collector_messages_total", (("topic", "RawEvents"),))] == 5
    assert samples[("collector_message_bytes_total", (("topic", "RawEvents"),))] == 15
    assert samples[("collector_publish_failures_total", (("topic", "RawEvents"),))] == 1


def test_requests_are_counted_per_method_route_and_status() -> None:
    metrics = CollectorMetrics.create()
    for method in ("GET", "GET", "POST", "PROPFIND", "MKCOL"):
        metrics.count_request(method, "/i", 200)
    metrics.count_request("GET", "unmatched", 404)

    samples = scrape(metrics)

    def requests(method: str, route: str, status: str) -> float:
        labels = (("method", method), ("route", route), ("status", status))
        return samples[("collector_requests_total", labels)]

    assert requests("GET", "/i", "200") == 2
    assert requests("POST", "/i", "200") == 1
    assert requests("other", "/i", "200") == 2
    assert requests("GET", "unmatched", "404") == 1
    assert not any("PROPFIND" in str(key) for key in samples)


def test_two_apps_cannot_share_a_registry_by_accident() -> None:
    registry = prometheus_client.CollectorRegistry()
    CollectorMetrics.create(registry)

    try:
        CollectorMetrics.create(registry)
    except ValueError as error:
        assert "collector_requests" in str(error)
    else:
        raise AssertionError("a second set of collector metrics was registered twice")
