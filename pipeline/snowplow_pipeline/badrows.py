"""Bad rows: the message format for every failure, in Snowplow's self-describing shapes.

A bad row is one JSON object ``{"schema": <iglu uri>, "data": {"processor", "failure",
"payload"}}`` whose schema and field names are those of Snowplow's bad-row schemas, so that
tools written for upstream failed events read ours. Builders take keyword arguments only and
return plain dicts; ``serialize`` gives the bytes published to ``BadRawEvents``,
``BadEnrichedEvents`` or ``BadElasticsearchEvents``.
"""

from __future__ import annotations

import datetime
import json
from importlib import metadata
from typing import Any

from snowplow_pipeline import payloads

VENDOR = "com.snowplowanalytics.snowplow.badrows"

SIZE_VIOLATION = f"iglu:{VENDOR}/size_violation/jsonschema/1-0-0"
COLLECTOR_PAYLOAD_FORMAT_VIOLATION = (
    f"iglu:{VENDOR}/collector_payload_format_violation/jsonschema/1-0-0"
)
ADAPTER_FAILURES = f"iglu:{VENDOR}/adapter_failures/jsonschema/1-0-0"
TRACKER_PROTOCOL_VIOLATIONS = f"iglu:{VENDOR}/tracker_protocol_violations/jsonschema/1-0-1"
SCHEMA_VIOLATIONS = f"iglu:{VENDOR}/schema_violations/jsonschema/2-0-1"
ENRICHMENT_FAILURES = f"iglu:{VENDOR}/enrichment_failures/jsonschema/2-0-1"
GENERIC_ERROR = f"iglu:{VENDOR}/generic_error/jsonschema/1-0-0"
LOADER_PARSING_ERROR = f"iglu:{VENDOR}/loader_parsing_error/jsonschema/2-0-0"

try:
    VERSION = metadata.version("snowplow-mini-k8s")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"


def processor(component: str) -> dict[str, str]:
    """The ``processor`` block naming which of our components wrote the bad row."""
    return {"artifact": f"snowplow-mini-{component}", "version": VERSION}


def now_iso() -> str:
    moment = datetime.datetime.now(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def size_violation(
    *,
    component: str,
    maximum_allowed_bytes: int,
    actual_bytes: int,
    expectation: str,
    payload: str,
) -> dict[str, Any]:
    """A record too big to pass on. ``payload`` is cut to a tenth of the limit."""
    return _row(
        SIZE_VIOLATION,
        component=component,
        failure={
            "timestamp": now_iso(),
            "maximumAllowedSizeBytes": maximum_allowed_bytes,
            "actualSizeBytes": actual_bytes,
            "expectation": expectation,
        },
        payload=payload[: max(maximum_allowed_bytes // 10, 1)],
    )


def collector_payload_format_violation(
    *, component: str, message: dict[str, Any], payload: str, loader: str = "thrift"
) -> dict[str, Any]:
    """A raw record that is not a readable collector payload; ``payload`` is its base64."""
    return _row(
        COLLECTOR_PAYLOAD_FORMAT_VIOLATION,
        component=component,
        failure={"timestamp": now_iso(), "loader": loader, "message": message},
        payload=payload,
    )


def adapter_failures(
    *,
    component: str,
    vendor: str,
    version: str,
    messages: list[dict[str, Any]],
    payload: dict[str, Any],
) -> dict[str, Any]:
    """A request no adapter could read; ``payload`` is the collector payload as JSON."""
    failure = {"timestamp": now_iso(), "vendor": vendor, "version": version, "messages": messages}
    return _row(ADAPTER_FAILURES, component=component, failure=failure, payload=payload)


def tracker_protocol_violations(
    *,
    component: str,
    vendor: str,
    version: str,
    messages: list[dict[str, Any]],
    payload: dict[str, Any],
) -> dict[str, Any]:
    """A request against the tracker protocol; ``payload`` is the collector payload as JSON."""
    failure = {"timestamp": now_iso(), "vendor": vendor, "version": version, "messages": messages}
    return _row(TRACKER_PROTOCOL_VIOLATIONS, component=component, failure=failure, payload=payload)


def schema_violations(
    *,
    component: str,
    messages: list[dict[str, Any]],
    enriched: dict[str, Any],
    raw: dict[str, Any],
) -> dict[str, Any]:
    """An event whose atomic fields or self-describing JSON are invalid."""
    return _event_row(
        SCHEMA_VIOLATIONS, component=component, messages=messages, enriched=enriched, raw=raw
    )


def enrichment_failures(
    *,
    component: str,
    messages: list[dict[str, Any]],
    enriched: dict[str, Any],
    raw: dict[str, Any],
) -> dict[str, Any]:
    """An event an enrichment could not process."""
    return _event_row(
        ENRICHMENT_FAILURES, component=component, messages=messages, enriched=enriched, raw=raw
    )


def _event_row(
    schema: str,
    *,
    component: str,
    messages: list[dict[str, Any]],
    enriched: dict[str, Any],
    raw: dict[str, Any],
) -> dict[str, Any]:
    return _row(
        schema,
        component=component,
        failure={"timestamp": now_iso(), "messages": messages},
        payload={"enriched": enriched, "raw": raw},
    )


def generic_error(*, component: str, errors: list[str], payload: str) -> dict[str, Any]:
    return _row(
        GENERIC_ERROR,
        component=component,
        failure={"timestamp": now_iso(), "errors": errors},
        payload=payload,
    )


def loader_parsing_error(*, component: str, errors: list[str], payload: str) -> dict[str, Any]:
    """An enriched line a loader could not read; each error is a ``ParsingError`` message."""
    return _row(
        LOADER_PARSING_ERROR,
        component=component,
        failure={
            "type": "RowDecodingError",
            "errors": [{"type": "InvalidValue", "message": e} for e in errors],
        },
        payload=payload,
    )


def serialize(row: dict[str, Any]) -> bytes:
    """The row as UTF-8 JSON; text that is not valid UTF-8 (lone surrogates) becomes U+FFFD."""
    text = json.dumps(row, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return payloads.valid_utf8(text).encode()


def parse(data: bytes) -> dict[str, Any]:
    """Read a bad row; raise ``ValueError`` if the bytes are not a self-describing JSON."""
    row = json.loads(data)
    if not isinstance(row, dict) or not isinstance(row.get("schema"), str) or "data" not in row:
        raise ValueError("not a self-describing JSON bad row")
    return row


def _row(schema: str, *, component: str, failure: dict[str, Any], payload: Any) -> dict[str, Any]:
    return {
        "schema": schema,
        "data": {"processor": processor(component), "failure": failure, "payload": payload},
    }


def describe(row: dict[str, Any]) -> list[str]:
    """One plain sentence per problem in a bad row, for logs and the events API."""
    failure = row.get("data", {}).get("failure")
    kind = row.get("schema", "").split("/")[1] if row.get("schema", "").count("/") >= 3 else "?"
    if not isinstance(failure, dict):
        return [f"{kind}: {failure}"]
    if "messages" in failure:
        return [f"{kind}: {_describe_message(m)}" for m in failure["messages"]] or [kind]
    if "errors" in failure:
        return [
            f"{kind}: {e.get('message', e) if isinstance(e, dict) else e}"
            for e in failure["errors"]
        ]
    if "message" in failure:
        return [f"{kind}: {_describe_message(failure['message'])}"]
    if "maximumAllowedSizeBytes" in failure:
        return [
            f"{kind}: {failure['actualSizeBytes']} bytes, limit is "
            f"{failure['maximumAllowedSizeBytes']} bytes ({failure.get('expectation')})"
        ]
    return [kind]


def _describe_lookup(entry: dict[str, Any]) -> str:
    errors = entry.get("errors") or [{}]
    if all(e.get("error") == "NotFound" for e in errors):
        return f"not found in {entry.get('repository')}"
    messages = ", ".join(str(e.get("message") or e.get("error")) for e in errors)
    return f"{entry.get('repository')} failed ({messages})"


def _describe_message(message: Any) -> str:
    if not isinstance(message, dict):
        return str(message)
    if "enrichment" in message:
        enrichment = message.get("enrichment") or {}
        return f"enrichment {enrichment.get('identifier')}: {_describe_message(message['message'])}"
    error = message.get("error")
    if isinstance(error, dict) and error.get("schemaIssues"):
        issues = "; ".join(f"{i.get('path')}: {i.get('message')}" for i in error["schemaIssues"])
        return f"the schema {message.get('schemaKey')} itself is broken: {issues}"
    if isinstance(error, dict) and error.get("error") == "ValidationError":
        reports = "; ".join(r.get("message", "") for r in error.get("dataReports", []))
        return f"{message.get('schemaKey')} is not valid: {reports}"
    if isinstance(error, dict) and error.get("error") == "ResolutionError":
        return f"{message.get('schemaKey')} could not be resolved: " + "; ".join(
            _describe_lookup(entry) for entry in error.get("lookupHistory", [])
        )
    if "schemaCriterion" in message:
        return f"{message.get('schemaKey')} does not match {message['schemaCriterion']}"
    if "expectation" in message:
        return (
            f"{message.get('field')}: got {message.get('value')!r}, expected "
            f"{message['expectation']}"
        )
    if "field" in message:
        return f"{message['field']}: {message.get('error')}"
    if isinstance(error, dict):
        return f"{error.get('error')}: {error.get('message')}"
    return str(error if error is not None else message)
