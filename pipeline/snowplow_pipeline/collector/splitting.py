"""Splitting: fit a collector payload into transport messages, or keep it as a bad row.

A payload whose Thrift encoding is within the limit is one message. A larger one is split when
it can be: a POST whose body is a self-describing JSON with a ``data`` array (the tp2 batch
shape) becomes several payloads, each carrying a run of the events and every other field
unchanged. Whatever cannot be split, a GET, another kind of body, or a single event that is too
big on its own, becomes a ``size_violation`` bad row, so nothing is dropped silently.

The limit is one number, the smaller of ``max_payload_bytes`` (what we accept to pass to
enrich) and ``max_message_bytes`` (what the transport takes); the caller works it out. Upstream
treats the two limits in separate places; with one number a batch is split whenever splitting
helps, instead of only in the narrow band between the two limits.

Sizes are computed, not searched: a Thrift string is a length prefix plus its UTF-8 bytes, so a
payload's encoded size is the size with an empty body plus the body's bytes.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, NamedTuple

from snowplow_pipeline import badrows, payloads

COMPONENT = "collector"


class Messages(NamedTuple):
    """What one request becomes: raw messages (``RawEvents``) and bad rows (``BadRawEvents``)."""

    raw: list[bytes]
    bad: list[bytes]


def to_messages(payload: payloads.CollectorPayload, *, is_post: bool, max_bytes: int) -> Messages:
    """Encode ``payload`` into messages of at most ``max_bytes`` each."""
    encoded = payloads.serialize(payload)
    if len(encoded) <= max_bytes:
        return Messages(raw=[encoded], bad=[])

    # Only a POST batch of events can be cut into smaller payloads.
    batch = _parse_batch(payload.body) if is_post else "a GET request cannot be split"
    if isinstance(batch, str):
        row = _whole_violation(
            payload, actual_bytes=len(encoded), max_bytes=max_bytes, reason=batch
        )
        return Messages(raw=[], bad=[row])
    schema, events = batch
    return _split_batch(payload, schema=schema, events=events, max_bytes=max_bytes)


def _parse_batch(body: str | None) -> tuple[str, list[Any]] | str:
    """The schema and events of a self-describing batch, or why the body is not one."""
    try:
        document = json.loads(body or "")
    except (ValueError, RecursionError):
        return "a POST body that is not JSON cannot be split"
    if not isinstance(document, dict) or not isinstance(document.get("schema"), str):
        return "a POST body that is not a self-describing JSON cannot be split"
    if not isinstance(document.get("data"), list) or not document["data"]:
        return "a POST body whose data is not a non-empty array cannot be split"
    return document["schema"], document["data"]


def _split_batch(
    payload: payloads.CollectorPayload, *, schema: str, events: list[Any], max_bytes: int
) -> Messages:
    # Every part is prefix + events joined by commas + suffix around the same other fields.
    prefix = '{"schema":' + _dump(schema) + ',"data":['
    suffix = "]}"
    empty_bytes = len(payloads.serialize(dataclasses.replace(payload, body=prefix + suffix)))

    # Fill each part greedily, in order; an event too big for a part of its own is a bad row.
    runs: list[list[str]] = []
    bad: list[bytes] = []
    run_bytes = empty_bytes
    # Events as valid UTF-8 (JSON may carry lone surrogates), so sizes are the sizes written.
    for event in (payloads.valid_utf8(_dump(event)) for event in events):
        event_bytes = len(event.encode())
        if empty_bytes + event_bytes > max_bytes:
            bad.append(
                _event_violation(event, actual_bytes=empty_bytes + event_bytes, max_bytes=max_bytes)
            )
        elif runs and run_bytes + 1 + event_bytes <= max_bytes:
            runs[-1].append(event)
            run_bytes += 1 + event_bytes
        else:
            runs.append([event])
            run_bytes = empty_bytes + event_bytes

    raw = [
        payloads.serialize(dataclasses.replace(payload, body=prefix + ",".join(run) + suffix))
        for run in runs
    ]
    return Messages(raw=raw, bad=bad)


def _whole_violation(
    payload: payloads.CollectorPayload, *, actual_bytes: int, max_bytes: int, reason: str
) -> bytes:
    row = badrows.size_violation(
        component=COMPONENT,
        maximum_allowed_bytes=max_bytes,
        actual_bytes=actual_bytes,
        expectation=f"{reason}; a collector payload must be at most {max_bytes} bytes",
        payload=_dump(payloads.to_badrow_json(payload)),
    )
    return badrows.serialize(row)


def _event_violation(event: str, *, actual_bytes: int, max_bytes: int) -> bytes:
    row = badrows.size_violation(
        component=COMPONENT,
        maximum_allowed_bytes=max_bytes,
        actual_bytes=actual_bytes,
        expectation=(
            "each event of a POST batch must fit in a collector payload of at most "
            f"{max_bytes} bytes"
        ),
        payload=event,
    )
    return badrows.serialize(row)


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
