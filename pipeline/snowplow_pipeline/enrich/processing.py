"""Processing: one collector payload in, enriched events and bad rows out.

``Enricher.process`` never raises for bad input: every event of the payload ends as exactly one
enriched TSV line or one bad row, and a payload that yields no event at all (unreadable, an
unknown API, a broken request) ends as one bad row. Only an internal defect raises, and the
caller then leaves the message unacknowledged so that it is retried.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import logging
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from snowplow_pipeline import badrows, enriched, payloads
from snowplow_pipeline.enrich import adapters, selfdescribing, transform
from snowplow_pipeline.iglu import resolving

logger = logging.getLogger(__name__)

COMPONENT = "enrich"
SNOWPLOW = "com.snowplowanalytics.snowplow"
FIXED_EVENT_SCHEMAS = {
    "page_view": (SNOWPLOW, "page_view"),
    "page_ping": (SNOWPLOW, "page_ping"),
    "struct": ("com.google.analytics", "event"),
    "transaction": (SNOWPLOW, "transaction"),
    "transaction_item": (SNOWPLOW, "transaction_item"),
    "ad_impression": (SNOWPLOW, "ad_impression"),
}


@dataclasses.dataclass(slots=True)
class Outcome:
    """The result of one payload: TSV lines for ``EnrichedEvents``, rows for the bad topic."""

    good: list[str] = dataclasses.field(default_factory=list)
    bad: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class EnrichmentFailure(Exception):
    """Raised by an enrichment that cannot do its work for this event."""

    def __init__(self, *, schema_key: str, identifier: str, message: str) -> None:
        super().__init__(message)
        self.message = {
            "enrichment": {"schemaKey": schema_key, "identifier": identifier},
            "message": message,
        }


class Enrichment(Protocol):
    """One configured enrichment: fills fields and may add derived entities."""

    def enrich(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> None: ...


class Enricher:
    def __init__(
        self, *, resolver: resolving.Resolver, enrichments: Sequence[Enrichment] = ()
    ) -> None:
        self.resolver = resolver
        self.enrichments = list(enrichments)
        self.v_etl = f"snowplow-mini-enrich-{badrows.VERSION}"

    async def process(self, message: bytes) -> Outcome:
        outcome = Outcome()
        try:
            payload = payloads.deserialize(message)
        except payloads.PayloadFormatError as exc:
            outcome.bad.append(_format_violation(message, {"error": str(exc)}))
            return outcome
        try:
            raw_events = adapters.to_raw_events(payload)
        except adapters.PayloadEncodingError as exc:
            outcome.bad.append(
                _format_violation(
                    message, adapters.input_data("querystring", payload.querystring, str(exc))
                )
            )
            return outcome
        except adapters.TrackerProtocolError as exc:
            outcome.bad.append(
                _payload_failure(badrows.tracker_protocol_violations, payload, exc.messages)
            )
            return outcome
        except adapters.AdapterError as exc:
            outcome.bad.append(_payload_failure(badrows.adapter_failures, payload, exc.messages))
            return outcome
        for raw_event in raw_events:
            line, bad_row = await self.enrich_event(raw_event)
            if line is not None:
                outcome.good.append(line)
            elif bad_row is not None:
                outcome.bad.append(bad_row)
        return outcome

    async def enrich_event(
        self, event: adapters.RawEvent
    ) -> tuple[str, None] | tuple[None, dict[str, Any]]:
        """One enriched TSV line, or the bad row saying why there is none."""
        fields, problems = transform.transform(event.parameters)
        self._add_request_fields(fields, event)

        # Self-describing JSON: resolved and validated before any enrichment runs.
        extracted = await selfdescribing.extract(event.parameters, self.resolver)
        if extracted.unstruct is not None:
            fields["unstruct_event"] = selfdescribing.unstruct_field(extracted.unstruct)
        if extracted.entities:
            fields["contexts"] = selfdescribing.contexts_field(extracted.entities)
        _add_event_schema(fields, extracted.unstruct)
        if fields.get("event") == "unstruct" and not _has_unstruct(event.parameters):
            problems.append(
                transform.report(
                    "ue_pr",
                    None,
                    "a self-describing event in ue_pr or ue_px when e is ue",
                    "required",
                )
            )

        messages = extracted.messages
        if not messages and not problems:
            derived: list[dict[str, Any]] = []
            failures = self._run_enrichments(fields, event, derived)
            if failures:
                return None, badrows.enrichment_failures(
                    component=COMPONENT,
                    messages=failures,
                    enriched=partially_enriched(fields),
                    raw=event.to_badrow_json(),
                )
            if derived:
                fields["derived_contexts"] = selfdescribing.contexts_field(derived)

        problems += transform.check_lengths(fields)
        if problems:
            messages = [_atomic_violation(problems), *messages]
        if messages:
            return None, badrows.schema_violations(
                component=COMPONENT,
                messages=messages,
                enriched=partially_enriched(fields),
                raw=event.to_badrow_json(),
            )
        return enriched.to_tsv(fields), None

    def _add_request_fields(self, fields: dict[str, str], event: adapters.RawEvent) -> None:
        """Fields that come from the request and the processing, not from the parameters."""
        payload = event.payload
        fields["collector_tstamp"] = enriched.format_epoch_ms(payload.timestamp_ms)
        fields["etl_tstamp"] = enriched.format_timestamp(datetime.datetime.now(datetime.UTC))
        fields["v_collector"] = transform.clean(payload.collector)
        fields["v_etl"] = self.v_etl
        fields.setdefault("event_id", str(uuid.uuid4()))
        if "user_ipaddress" not in fields:
            fields["user_ipaddress"] = transform.clean(client_ip(payload))
        if "useragent" not in fields and payload.user_agent:
            fields["useragent"] = transform.clean(payload.user_agent)
        # The nuid and tnuid parameters (a server-side tracker's choice) win over the cookie;
        # an empty one sets nothing, as the collector, which then sets a new id, reads it.
        is_set_by_tracker = bool(event.parameters.get("tnuid") or event.parameters.get("nuid"))
        if payload.network_user_id and not is_set_by_tracker:
            fields["network_userid"] = transform.clean(payload.network_user_id)
        if "page_url" not in fields and payload.referer_uri and payload.path != "/r/tp2":
            fields["page_url"] = transform.clean(payload.referer_uri)
            transform.split_url(fields["page_url"], "page", fields)
        if "page_referrer" in fields:
            transform.split_url(fields["page_referrer"], "refr", fields)
        if "collector_tstamp" in fields:
            fields["derived_tstamp"] = transform.derive_tstamp(fields)

    def _run_enrichments(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        failures = []
        for enrichment in self.enrichments:
            try:
                enrichment.enrich(fields, event, derived)
            except EnrichmentFailure as exc:
                failures.append(exc.message)
        return failures


def _has_unstruct(parameters: dict[str, str]) -> bool:
    return bool(parameters.get("ue_pr") or parameters.get("ue_px"))


def client_ip(payload: payloads.CollectorPayload) -> str:
    """The first address of X-Forwarded-For, else of Forwarded ``for=``, else the peer."""
    for header in payload.headers:
        name, _, value = header.partition(":")
        if name.strip().lower() == "x-forwarded-for" and value.strip():
            return value.split(",")[0].strip()
    for header in payload.headers:
        name, _, value = header.partition(":")
        if name.strip().lower() == "forwarded":
            for part in value.replace(",", ";").split(";"):
                key, _, address = part.strip().partition("=")
                if key.lower() == "for" and address:
                    return address.strip('"').strip("[]")
    return payload.ip_address


def partially_enriched(fields: dict[str, str]) -> dict[str, str | None]:
    """All 131 fields as the ``enriched`` part of a bad row (null when not set)."""
    return {name: fields.get(name) for name in enriched.FIELDS}


def _add_event_schema(fields: dict[str, str], unstruct: dict[str, Any] | None) -> None:
    if fields.get("event") == "unstruct" and unstruct is not None:
        vendor, name, event_format, version = unstruct["schema"][5:].split("/")
    elif fields.get("event") in FIXED_EVENT_SCHEMAS:
        vendor, name = FIXED_EVENT_SCHEMAS[fields["event"]]
        event_format, version = "jsonschema", "1-0-0"
    else:
        return
    fields.update(
        event_vendor=vendor, event_name=name, event_format=event_format, event_version=version
    )


def _atomic_violation(problems: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemaKey": transform.ATOMIC_SCHEMA,
        "error": {"error": "ValidationError", "dataReports": problems},
    }


def _format_violation(message: bytes, failure: dict[str, Any]) -> dict[str, Any]:
    return badrows.collector_payload_format_violation(
        component=COMPONENT, message=failure, payload=base64.b64encode(message).decode()
    )


def _payload_failure(
    builder: Any, payload: payloads.CollectorPayload, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    vendor, version = payload.vendor_and_version
    return builder(
        component=COMPONENT,
        vendor=vendor,
        version=version,
        messages=messages,
        payload=payloads.to_badrow_json(payload),
    )
