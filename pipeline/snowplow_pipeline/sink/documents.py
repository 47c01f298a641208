"""Documents: what the sinks index, built from the messages they consume. Pure, no I/O.

A message becomes either a ``Document`` (index, id, serialized source) or a bad row for
``BadElasticsearchEvents``; nothing is dropped.

* An enriched event becomes its analytics-SDK JSON shape (``enriched.to_json``) with
  ``event_id`` as the document id, so a redelivered event overwrites itself.
* A bad row keeps its ``{schema, data}`` shape, flattened so that bad rows of different types
  never give one field two types in the mapping (see ``flatten_bad_row``). Its id is a hash of
  the message: upstream lets Elasticsearch pick ids, which turns every redelivery into a
  duplicate; a content hash makes redelivery idempotent here too, and two distinct failures
  always differ (they carry their own timestamp).

The source is serialized once, here: its length is what the batches count, and the bytes go
into the bulk request as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from snowplow_pipeline import badrows, enriched

COMPONENT = "sink"
BAD_ROW_VENDOR_MARK = "badrows"

# Keys whose value has a different JSON type in different bad-row types (a string in one, an
# object in another): a string or a list of scalars moves to ``<key>_str`` / ``<key>_list``.
POLYMORPHIC_KEYS = frozenset({"failure", "payload", "error", "errors", "message", "messages"})
# Keys holding arbitrary JSON (tracker parameters, a rejected JSON value, a mapping): kept as
# one JSON string, since their inner fields would otherwise explode or clash in the mapping.
OPAQUE_KEYS = frozenset({"parameters", "expectedMapping", "json", "value"})


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    """One document to index; ``message`` is the consumed message it came from."""

    index: str
    id: str
    source: bytes
    message: bytes

    @property
    def size_bytes(self) -> int:
        return len(self.source)


class UnreadableMessageError(ValueError):
    """A message cannot become a document; ``bad_row`` is what goes to the failure topic."""

    def __init__(self, bad_row: dict[str, Any]) -> None:
        super().__init__("; ".join(badrows.describe(bad_row)))
        self.bad_row = bad_row


def from_enriched(message: bytes, *, index: str) -> Document:
    """The document for one enriched TSV line.

    Raises ``UnreadableMessageError`` carrying a ``loader_parsing_error`` bad row when the line
    is not a valid enriched event.
    """
    line = message.decode("utf-8", errors="replace")
    try:
        event = enriched.to_json(enriched.from_tsv(line))
    except enriched.EnrichedFormatError as exc:
        row = badrows.loader_parsing_error(component=COMPONENT, errors=exc.errors, payload=line)
        raise UnreadableMessageError(row) from exc
    return Document(index=index, id=event["event_id"], source=_serialize(event), message=message)


def from_bad_row(message: bytes, *, index: str) -> Document:
    """The document for one bad row (or any self-describing JSON) consumed by the bad sink.

    Raises ``UnreadableMessageError`` carrying a ``generic_error`` bad row when the message is
    not a self-describing JSON.
    """
    text = message.decode("utf-8", errors="replace")
    try:
        row = badrows.parse(message)
    except ValueError as exc:
        reason = f"not a self-describing JSON bad row: {exc}"
        failure = badrows.generic_error(component=COMPONENT, errors=[reason], payload=text)
        raise UnreadableMessageError(failure) from exc
    source = _serialize(flatten_bad_row(row))
    return Document(index=index, id=content_id(message), source=source, message=message)


def rejected(document: Document, *, reason: str) -> dict[str, Any]:
    """The ``generic_error`` bad row for a document Elasticsearch refused for good."""
    payload = document.message.decode("utf-8", errors="replace")
    errors = [f"Elasticsearch rejected the document for index {document.index}: {reason}"]
    return badrows.generic_error(component=COMPONENT, errors=errors, payload=payload)


def failure_message(row: dict[str, Any], *, max_bytes: int) -> bytes:
    """The message for a bad row on the failure topic; a ``size_violation`` if it is too big.

    A rejected document's bad row embeds the whole original message, so it can pass the
    transport's message limit when the original was close to it.
    """
    message = badrows.serialize(row)
    if len(message) <= max_bytes:
        return message
    violation = badrows.size_violation(
        component=COMPONENT,
        maximum_allowed_bytes=max_bytes,
        actual_bytes=len(message),
        expectation="a failed event must fit in one message of the failure topic",
        payload=message.decode("utf-8", errors="replace"),
    )
    return badrows.serialize(violation)


def content_id(message: bytes) -> str:
    return hashlib.sha256(message).hexdigest()[:40]


def flatten_bad_row(row: dict[str, Any]) -> dict[str, Any]:
    """Rename and stringify the fields of a bad row whose type varies between bad-row types.

    Only self-describing JSONs whose vendor contains ``badrows`` are changed; anything else
    passes through. ``schema`` and the ``data`` envelope keep their names, so Kibana users find
    ``data.failure.timestamp`` and ``data.payload_str`` where they expect them.
    """
    vendor = row["schema"].removeprefix("iglu:").split("/", 1)[0]
    if BAD_ROW_VENDOR_MARK not in vendor or not isinstance(row["data"], dict):
        return row
    return {"schema": row["schema"], "data": _flatten_object(row["data"])}


def _flatten_object(value: dict[str, Any]) -> dict[str, Any]:
    output: dict[str, Any] = {}
    for key, inner in value.items():
        if key in OPAQUE_KEYS:
            output[key] = inner if inner is None else _serialize_scalar(inner)
        elif key in POLYMORPHIC_KEYS and isinstance(inner, str):
            output[f"{key}_str"] = inner
        elif key in POLYMORPHIC_KEYS and isinstance(inner, list) and _has_scalars(inner):
            output[f"{key}_list"] = [_serialize_scalar(item) for item in inner]
        else:
            output[key] = _flatten_value(inner)
    return output


def _flatten_value(value: Any) -> Any:
    if isinstance(value, dict):
        return _flatten_object(value)
    if isinstance(value, list):
        return [_flatten_value(item) for item in value]
    return value


def _has_scalars(items: list[Any]) -> bool:
    return any(not isinstance(item, dict) for item in items)


def _serialize_scalar(item: Any) -> str:
    return item if isinstance(item, str) else _serialize(item).decode()


def _serialize(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
