"""Faults during a steady stream: nothing acknowledged is lost, nothing is in ``good`` twice.

One rendered Mini (``shared_rendered_pipeline``) serves the module; each test streams its own
events (its own app id) through it with a sender that retries like a tracker, and breaks one
part while the stream runs: a SIGKILL of the collector, of enrich, of each sink; a restart of
nsqd; Elasticsearch down for 60 s. Afterwards every acknowledged event is in exactly one of
the indexes (sent = good + bad), each good event is one document, and no document belongs to
an event that was never acknowledged.
"""

from __future__ import annotations

import asyncio
import uuid

import elasticsearch
import pytest

from tests.e2e import outcomes, rendered, sending
from tests.e2e.rendered import RenderedPipeline

pytestmark = [pytest.mark.nsq, pytest.mark.elasticsearch]

PER_SECOND = 40.0
STREAM_SECONDS = 15.0
FAULT_AFTER_SECONDS = 5.0
DOWN_SECONDS = 1.0
OUTAGE_SECONDS = 60.0
SETTLE_SECONDS = 120.0


async def stream_with_fault(
    mini: RenderedPipeline,
    *,
    fault: str,
    per_second: float,
    stream_seconds: float,
    down_seconds: float,
) -> sending.Stream:
    """Stream, break ``fault`` after a few seconds, bring it back, and wait for the stream."""
    app_id = f"fault-{fault}-{uuid.uuid4().hex[:6]}"
    streaming = asyncio.create_task(
        sending.send_steadily(
            mini.collector_url,
            app_id=app_id,
            per_second=per_second,
            count=int(per_second * stream_seconds),
        )
    )
    await asyncio.sleep(FAULT_AFTER_SECONDS)

    if fault == "nsqd":
        await rendered.in_launcher(mini.nsqd.restart)
    elif fault == "elasticsearch":
        await rendered.in_launcher(mini.elasticsearch.stop)
        await asyncio.sleep(down_seconds)
        await rendered.in_launcher(mini.elasticsearch.start)
    else:
        await rendered.in_launcher(lambda: mini.kill(fault))
        await asyncio.sleep(down_seconds)
        await rendered.in_launcher(lambda: mini.start(fault))
    return await streaming


async def assert_every_event_once(
    es_client: elasticsearch.Elasticsearch, stream: sending.Stream
) -> outcomes.Outcome:
    outcome = await outcomes.settle(
        es_client,
        sent=stream.sent,
        timeout_seconds=SETTLE_SECONDS,
        good_filter={"term": {"app_id": stream.app_id}},
        bad_filter=lambda text: stream.app_id in text,
    )
    summary = outcomes.describe(outcome, stream.sent)

    assert stream.unacknowledged == [], summary
    assert outcome.missing(stream.sent) == [], summary
    assert sorted(outcome.good) == sorted(stream.good), summary
    assert sorted(outcome.bad) == sorted(stream.bad), summary
    assert outcome.in_both() == [], summary
    assert outcome.unknown_good == 0, summary
    assert outcome.unmatched_bad == 0, summary
    return outcome


@pytest.mark.parametrize(
    "fault", ["collector", "enrich", "sink-good", "sink-bad", "nsqd"], ids=lambda f: f"kill-{f}"
)
async def test_no_acknowledged_event_is_lost_or_doubled_when_a_part_fails(
    shared_rendered_pipeline: RenderedPipeline,
    es_client: elasticsearch.Elasticsearch,
    fault: str,
) -> None:
    stream = await stream_with_fault(
        shared_rendered_pipeline,
        fault=fault,
        per_second=PER_SECOND,
        stream_seconds=STREAM_SECONDS,
        down_seconds=DOWN_SECONDS,
    )

    outcome = await assert_every_event_once(es_client, stream)

    assert len(stream.sent) == int(PER_SECOND * STREAM_SECONDS)
    assert outcome.bad_duplicates() == {}, outcomes.describe(outcome, stream.sent)
    print(f"{fault}: {outcomes.describe(outcome, stream.sent)}; retries {stream.failed_attempts}")


async def test_no_event_is_lost_when_elasticsearch_is_down_for_a_minute(
    shared_rendered_pipeline: RenderedPipeline,
    es_client: elasticsearch.Elasticsearch,
) -> None:
    stream = await stream_with_fault(
        shared_rendered_pipeline,
        fault="elasticsearch",
        per_second=10.0,
        stream_seconds=FAULT_AFTER_SECONDS + OUTAGE_SECONDS + 10,
        down_seconds=OUTAGE_SECONDS,
    )

    outcome = await assert_every_event_once(es_client, stream)

    # The collector never depends on Elasticsearch: every request was answered the first time.
    assert stream.failed_attempts == {}
    assert outcome.bad_duplicates() == {}, outcomes.describe(outcome, stream.sent)
    print(f"elasticsearch: {outcomes.describe(outcome, stream.sent)}")
