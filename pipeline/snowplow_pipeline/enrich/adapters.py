"""Adapters: from one collector payload to the raw events it carries.

A raw event is one parameter map of the tracker protocol plus the request context it arrived
with. Which adapter applies is decided by the payload's path (``/vendor/version``). Failures are
reported as exceptions carrying the bad-row messages, so the caller picks the bad-row type:
``AdapterError`` becomes ``adapter_failures``, ``TrackerProtocolError`` becomes
``tracker_protocol_violations``, ``PayloadEncodingError`` becomes
``collector_payload_format_violation``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import unquote, urlsplit

from snowplow_pipeline import payloads
from snowplow_pipeline.enrich import selfdescribing

SNOWPLOW = "com.snowplowanalytics.snowplow"
IGLU_WEBHOOK = ("com.snowplowanalytics.iglu", "v1")
PAYLOAD_DATA_PREFIX = f"iglu:{SNOWPLOW}/payload_data/jsonschema/1-0-"
REDIRECT_SCHEMA = f"iglu:{SNOWPLOW}/uri_redirect/jsonschema/1-0-0"
UNSTRUCT_SCHEMA = f"iglu:{SNOWPLOW}/unstruct_event/jsonschema/1-0-0"
CONTEXTS_SCHEMA = f"iglu:{SNOWPLOW}/contexts/jsonschema/1-0-0"
JSON_CONTENT_TYPES = ("application/json", "application/json; charset=utf-8")


@dataclasses.dataclass(slots=True)
class RawEvent:
    """One event's parameters with the request it came in."""

    vendor: str
    version: str
    parameters: dict[str, str]
    payload: payloads.CollectorPayload

    def to_badrow_json(self) -> dict[str, Any]:
        """The ``raw`` part of schema-violation and enrichment-failure bad rows."""
        p = self.payload
        return {
            "vendor": self.vendor,
            "version": self.version,
            "parameters": [{"name": k, "value": v} for k, v in self.parameters.items()],
            "contentType": p.content_type,
            "loaderName": "thrift",
            "encoding": p.encoding,
            "hostname": p.hostname,
            "timestamp": payloads.format_iso(p.timestamp_ms),
            "ipAddress": p.ip_address,
            "useragent": p.user_agent,
            "refererUri": p.referer_uri,
            "headers": p.headers,
            "userId": p.network_user_id,
        }


class AdapterError(Exception):
    def __init__(self, messages: list[dict[str, Any]]) -> None:
        super().__init__(messages)
        self.messages = messages


class TrackerProtocolError(AdapterError):
    pass


class PayloadEncodingError(Exception):
    """The query string cannot be decoded with the payload's encoding."""


def input_data(field: str, value: Any, expectation: str) -> dict[str, Any]:
    """The ``InputData`` failure message: which field, what came, what was expected."""
    return {"field": field, "value": _shorten(value), "expectation": expectation}


def to_raw_events(payload: payloads.CollectorPayload) -> list[RawEvent]:
    """Every event in the payload, or an exception naming what is wrong with it."""
    vendor, version = payload.vendor_and_version
    query = parse_querystring(payload.querystring)
    if vendor == SNOWPLOW and version == "tp1":
        return [_single_event(payload, vendor, version, query)]
    if vendor == SNOWPLOW and version == "tp2":
        return _tp2_events(payload, query)
    if vendor == "r" and version == "tp2":
        return [_redirect_event(payload, query)]
    if (vendor, version) == IGLU_WEBHOOK:
        return [_iglu_webhook_event(payload, query)]
    raise AdapterError(
        [
            input_data(
                "vendor/version",
                f"{vendor}/{version}",
                "a supported API: com.snowplowanalytics.snowplow/tp1 (/i), "
                "com.snowplowanalytics.snowplow/tp2, r/tp2 or com.snowplowanalytics.iglu/v1",
            )
        ]
    )


def parse_querystring(querystring: str | None) -> dict[str, str]:
    """Decode a query string; a repeated name keeps its last value."""
    parameters: dict[str, str] = {}
    if not querystring:
        return parameters
    try:
        for pair in querystring.split("&"):
            if pair:
                name, _, value = pair.partition("=")
                parameters[_unquote(name)] = _unquote(value)
    except UnicodeDecodeError as exc:
        raise PayloadEncodingError(
            f"query string is not valid UTF-8 after decoding: {exc}"
        ) from exc
    return parameters


def _unquote(text: str) -> str:
    """Form decoding (``+`` is a space), strict about UTF-8; most values need none."""
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text, errors="strict") if "%" in text else text


def _single_event(
    payload: payloads.CollectorPayload, vendor: str, version: str, query: dict[str, str]
) -> RawEvent:
    if not query:
        raise TrackerProtocolError(
            [
                input_data(
                    "querystring", payload.querystring, "a query string with the event's parameters"
                )
            ]
        )
    return RawEvent(vendor, version, query, payload)


def _tp2_events(payload: payloads.CollectorPayload, query: dict[str, str]) -> list[RawEvent]:
    vendor, version = SNOWPLOW, "tp2"
    if payload.body is None or payload.body == "":
        return [_single_event(payload, vendor, version, query)]
    content_type = (payload.content_type or "").lower()
    if content_type not in JSON_CONTENT_TYPES:
        raise TrackerProtocolError(
            [
                input_data(
                    "contentType",
                    payload.content_type,
                    "application/json or application/json; charset=utf-8",
                )
            ]
        )
    try:
        body = selfdescribing.load_json(payload.body)
    except selfdescribing.JsonError as exc:
        raise TrackerProtocolError(
            [
                {
                    "field": "body",
                    "value": _shorten(payload.body),
                    "error": str(exc),
                }
            ]
        ) from exc
    events = _payload_data_events(body)
    return [RawEvent(vendor, version, {**event, **query}, payload) for event in events]


def _payload_data_events(body: Any) -> list[dict[str, str]]:
    """The event maps of a ``payload_data`` body, checked against the protocol's rules.

    This checks what the wrapper schema says (a self-describing JSON whose data is an array of
    string maps) with messages naming the exact element, which a generic validator cannot.
    """
    schema = body.get("schema") if isinstance(body, dict) else None
    if not isinstance(schema, str) or not schema.startswith(PAYLOAD_DATA_PREFIX):
        raise TrackerProtocolError(
            [
                {
                    "schemaKey": schema if isinstance(schema, str) else None,
                    "schemaCriterion": f"iglu:{SNOWPLOW}/payload_data/jsonschema/1-0-*",
                }
            ]
        )
    data = body.get("data")
    if not isinstance(data, list) or not data:
        raise TrackerProtocolError(
            [
                input_data(
                    "body.data", data, "a non-empty array of events (maps of parameter to string)"
                )
            ]
        )
    problems = []
    for index, event in enumerate(data):
        if not isinstance(event, dict):
            problems.append(input_data(f"body.data[{index}]", event, "an object"))
            continue
        for name, value in event.items():
            if not isinstance(value, str):
                problems.append(input_data(f"body.data[{index}].{name}", value, "a string"))
    if problems:
        raise TrackerProtocolError(problems)
    return data


def _redirect_event(payload: payloads.CollectorPayload, query: dict[str, str]) -> RawEvent:
    target = query.get("u")
    if not target or not urlsplit(target).scheme:
        raise TrackerProtocolError([input_data("u", target, "the absolute URL redirected to")])
    redirect = {"schema": REDIRECT_SCHEMA, "data": {"uri": target}}
    parameters = {k: v for k, v in query.items() if k != "u"}
    parameters.setdefault("tv", "r-tp2")
    parameters.setdefault("p", "web")
    if "e" not in parameters:
        parameters["e"] = "ue"
        parameters["ue_pr"] = json.dumps({"schema": UNSTRUCT_SCHEMA, "data": redirect})
    else:
        contexts = _existing_contexts(parameters)
        contexts.append(redirect)
        parameters.pop("cx", None)
        parameters["co"] = json.dumps({"schema": CONTEXTS_SCHEMA, "data": contexts})
    return RawEvent("r", "tp2", parameters, payload)


def _existing_contexts(parameters: dict[str, str]) -> list[Any]:
    try:
        decoded = selfdescribing.decode_parameter(parameters, plain="co", encoded="cx")
        wrapper = selfdescribing.load_json(decoded) if decoded else None
    except ValueError:
        return []
    data = wrapper.get("data") if isinstance(wrapper, dict) else None
    return list(data) if isinstance(data, list) else []


def _iglu_webhook_event(payload: payloads.CollectorPayload, query: dict[str, str]) -> RawEvent:
    """One self-describing event from ``?schema=…`` plus parameters, a form or a JSON body."""
    if payload.body and (payload.content_type or "").startswith("application/json"):
        try:
            event = selfdescribing.load_json(payload.body)
        except selfdescribing.JsonError as exc:
            raise AdapterError(
                [
                    {
                        "field": "body",
                        "value": _shorten(payload.body),
                        "error": str(exc),
                    }
                ]
            ) from exc
        if "schema" in query and isinstance(event, dict) and "schema" not in event:
            event = {"schema": query["schema"], "data": event}
    else:
        fields = dict(query)
        if payload.body:
            fields.update(parse_querystring(payload.body))
        schema = fields.pop("schema", None)
        if not schema:
            raise AdapterError([input_data("schema", None, "an iglu: schema URI parameter")])
        event = {"schema": schema, "data": fields}
    parameters = {
        "e": "ue",
        "p": query.get("p", "srv"),
        "tv": "com.snowplowanalytics.iglu-v1",
        "ue_pr": json.dumps({"schema": UNSTRUCT_SCHEMA, "data": event}),
    }
    return RawEvent(*IGLU_WEBHOOK, parameters, payload)


def _shorten(value: Any, limit: int = 200) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value
