"""Golden files: raw collector payloads and the enriched event each must become.

Each file in ``golden/`` was written by hand from the protocol facts: the payload as the
collector would record it, and every non-empty field of the expected enriched event. All
other fields must be empty. ``etl_tstamp`` and ``v_etl`` depend on when and by which version
the event was processed, so they are checked for shape only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from snowplow_pipeline import enriched, payloads
from snowplow_pipeline.enrich import processing

GOLDEN = Path(__file__).with_name("golden")
CASES = sorted(GOLDEN.glob("*.json"))


def build_payload(spec: dict[str, Any]) -> bytes:
    return payloads.serialize(payloads.CollectorPayload(collector="golden-collector", **spec))


@pytest.mark.parametrize("path", CASES, ids=[case.stem for case in CASES])
async def test_payload_becomes_the_expected_enriched_event(
    enricher: processing.Enricher, path: Path
) -> None:
    case = json.loads(path.read_text())

    outcome = await enricher.process(build_payload(case["payload"]))

    assert outcome.bad == []
    [line] = outcome.good
    values = line.split("\t")
    assert len(values) == 131
    actual = dict(zip(enriched.FIELDS, values, strict=True))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", actual.pop("etl_tstamp"))
    assert actual.pop("v_etl").startswith("snowplow-mini-enrich-")
    expected = {name: case["expected"].get(name, "") for name in actual}
    assert actual == expected


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 5
