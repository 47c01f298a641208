"""The enriched event: the message format between enrich and the good sink.

An enriched event is one line of 131 tab-separated fields in the canonical order, no header,
empty string for a missing value. This module owns that order and the field types, writes and
reads lines, and turns a line into the JSON shape of Snowplow's analytics SDKs (typed atomic
fields, one ``contexts_<vendor>_<name>_<model>`` array per entity type, one
``unstruct_event_<vendor>_<name>_<model>`` object, ``geo_location``), which is what the sinks
index and what the events API returns.

Where the SDKs disagree we follow the canonical names and the Scala SDK's types: field 122 is
``refr_dvce_tstamp`` and ``se_value`` is a number. Entities carry no ``_schema_version``.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

FIELDS: tuple[str, ...] = (
    "app_id", "platform", "etl_tstamp", "collector_tstamp", "dvce_created_tstamp", "event",
    "event_id", "txn_id", "name_tracker", "v_tracker", "v_collector", "v_etl", "user_id",
    "user_ipaddress", "user_fingerprint", "domain_userid", "domain_sessionidx", "network_userid",
    "geo_country", "geo_region", "geo_city", "geo_zipcode", "geo_latitude", "geo_longitude",
    "geo_region_name", "ip_isp", "ip_organization", "ip_domain", "ip_netspeed", "page_url",
    "page_title", "page_referrer", "page_urlscheme", "page_urlhost", "page_urlport",
    "page_urlpath", "page_urlquery", "page_urlfragment", "refr_urlscheme", "refr_urlhost",
    "refr_urlport", "refr_urlpath", "refr_urlquery", "refr_urlfragment", "refr_medium",
    "refr_source", "refr_term", "mkt_medium", "mkt_source", "mkt_term", "mkt_content",
    "mkt_campaign", "contexts", "se_category", "se_action", "se_label", "se_property",
    "se_value", "unstruct_event", "tr_orderid", "tr_affiliation", "tr_total", "tr_tax",
    "tr_shipping", "tr_city", "tr_state", "tr_country", "ti_orderid", "ti_sku", "ti_name",
    "ti_category", "ti_price", "ti_quantity", "pp_xoffset_min", "pp_xoffset_max",
    "pp_yoffset_min", "pp_yoffset_max", "useragent", "br_name", "br_family", "br_version",
    "br_type", "br_renderengine", "br_lang", "br_features_pdf", "br_features_flash",
    "br_features_java", "br_features_director", "br_features_quicktime",
    "br_features_realplayer", "br_features_windowsmedia", "br_features_gears",
    "br_features_silverlight", "br_cookies", "br_colordepth", "br_viewwidth", "br_viewheight",
    "os_name", "os_family", "os_manufacturer", "os_timezone", "dvce_type", "dvce_ismobile",
    "dvce_screenwidth", "dvce_screenheight", "doc_charset", "doc_width", "doc_height",
    "tr_currency", "tr_total_base", "tr_tax_base", "tr_shipping_base", "ti_currency",
    "ti_price_base", "base_currency", "geo_timezone", "mkt_clickid", "mkt_network", "etl_tags",
    "dvce_sent_tstamp", "refr_domain_userid", "refr_dvce_tstamp", "derived_contexts",
    "domain_sessionid", "derived_tstamp", "event_vendor", "event_name", "event_format",
    "event_version", "event_fingerprint", "true_tstamp",
)  # fmt: skip
assert len(FIELDS) == 131

TIMESTAMP_FIELDS = frozenset({
    "etl_tstamp", "collector_tstamp", "dvce_created_tstamp", "dvce_sent_tstamp",
    "refr_dvce_tstamp", "derived_tstamp", "true_tstamp",
})  # fmt: skip
INTEGER_FIELDS = frozenset({
    "txn_id", "domain_sessionidx", "page_urlport", "refr_urlport", "ti_quantity",
    "pp_xoffset_min", "pp_xoffset_max", "pp_yoffset_min", "pp_yoffset_max", "br_viewwidth",
    "br_viewheight", "dvce_screenwidth", "dvce_screenheight", "doc_width", "doc_height",
})  # fmt: skip
DECIMAL_FIELDS = frozenset({
    "geo_latitude", "geo_longitude", "se_value", "tr_total", "tr_tax", "tr_shipping", "ti_price",
    "tr_total_base", "tr_tax_base", "tr_shipping_base", "ti_price_base",
})  # fmt: skip
BOOLEAN_FIELDS = frozenset({
    "br_features_pdf", "br_features_flash", "br_features_java", "br_features_director",
    "br_features_quicktime", "br_features_realplayer", "br_features_windowsmedia",
    "br_features_gears", "br_features_silverlight", "br_cookies", "dvce_ismobile",
})  # fmt: skip
CONTEXTS_FIELDS = frozenset({"contexts", "derived_contexts"})
REQUIRED_FIELDS = ("event_id", "collector_tstamp", "v_collector", "v_etl")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_IGLU_URI = re.compile(
    r"^iglu:([a-zA-Z0-9_.\-]+)/([a-zA-Z0-9_\-]+)/([a-zA-Z0-9_\-]+)/([1-9][0-9]*)"
    r"-(0|[1-9][0-9]*)-(0|[1-9][0-9]*)$"
)
_CAMEL_BOUNDARY = re.compile(r"([^A-Z_])([A-Z])")


class EnrichedFormatError(ValueError):
    """A line is not a valid enriched event; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def format_timestamp(moment: datetime.datetime) -> str:
    """The TSV timestamp form: ``yyyy-MM-dd HH:mm:ss.SSS`` in UTC."""
    naive_utc = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return naive_utc.isoformat(sep=" ", timespec="milliseconds")


def format_epoch_ms(epoch_ms: int) -> str:
    return format_timestamp(datetime.datetime.fromtimestamp(epoch_ms / 1000, tz=datetime.UTC))


def to_tsv(event: Mapping[str, str]) -> str:
    """Write one line. Values must already be TSV-safe (enrich cleans them)."""
    return "\t".join(map(event.get, FIELDS, itertools.repeat("")))


def from_tsv(line: str) -> dict[str, str]:
    """Read one line into field name -> raw string (empty fields omitted)."""
    values = line.rstrip("\n").split("\t")
    if len(values) != len(FIELDS):
        raise EnrichedFormatError(
            [f"expected {len(FIELDS)} tab-separated fields, got {len(values)}"]
        )
    event = {name: value for name, value in zip(FIELDS, values, strict=True) if value}
    missing = [name for name in REQUIRED_FIELDS if name not in event]
    if missing:
        raise EnrichedFormatError([f"{name}: required field is empty" for name in missing])
    return event


def to_json(event: Mapping[str, str]) -> dict[str, Any]:
    """The analytics-SDK JSON shape of an event read by ``from_tsv``.

    Raises ``EnrichedFormatError`` listing every field whose value does not fit its type.
    """
    output: dict[str, Any] = {}
    errors: list[str] = []
    if event.get("geo_latitude") and event.get("geo_longitude"):
        output["geo_location"] = f"{event['geo_latitude']},{event['geo_longitude']}"
    for name, value in event.items():
        try:
            _convert_field(output, name, value)
        except (ValueError, KeyError, TypeError) as exc:
            errors.append(f"{name}: cannot read {_shorten(value)!r} ({exc})")
    if errors:
        raise EnrichedFormatError(errors)
    if not _UUID.match(event.get("event_id", "")):
        raise EnrichedFormatError(
            [f"event_id: {_shorten(event.get('event_id', ''))!r} is not a UUID"]
        )
    return output


def entity_key(prefix: str, schema_uri: str) -> str:
    """``contexts_com_acme_my_entity_1`` for ``iglu:com.acme/myEntity/jsonschema/1-0-0``."""
    match = _IGLU_URI.match(schema_uri)
    if not match:
        raise ValueError(f"{_shorten(schema_uri)!r} is not an Iglu schema URI")
    vendor, name, _, model = match.group(1, 2, 3, 4)
    vendor = vendor.replace(".", "_").replace("-", "_").lower()
    name = _CAMEL_BOUNDARY.sub(r"\1_\2", name.replace("-", "_")).lower()
    return f"{prefix}_{vendor}_{name}_{model}"


def _convert_field(output: dict[str, Any], name: str, value: str) -> None:
    if name in TIMESTAMP_FIELDS:
        datetime.datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f")
        output[name] = value.replace(" ", "T") + "Z"
    elif name in INTEGER_FIELDS:
        output[name] = int(value)
    elif name in DECIMAL_FIELDS:
        output[name] = float(value)
    elif name in BOOLEAN_FIELDS:
        output[name] = {"1": True, "0": False}[value]
    elif name in CONTEXTS_FIELDS:
        for entity in json.loads(value)["data"]:
            key = entity_key("contexts", entity["schema"])
            output.setdefault(key, []).append(entity["data"])
    elif name == "unstruct_event":
        inner = json.loads(value)["data"]
        output[entity_key("unstruct_event", inner["schema"])] = inner["data"]
    else:
        output[name] = value


def _shorten(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "…"
