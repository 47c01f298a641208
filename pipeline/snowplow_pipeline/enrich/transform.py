"""Transform: tracker-protocol parameters onto the canonical atomic fields.

Pure functions only. ``transform`` returns the atomic fields it could fill and a list of data
reports for the parameters it could not read (a malformed timestamp, an unknown event type, a
value longer than its column). Enrich turns a non-empty list into a ``schema_violations`` bad
row against the atomic schema, so every problem in an event is reported at once.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from snowplow_pipeline import enriched

ATOMIC_SCHEMA = "iglu:com.snowplowanalytics.snowplow/atomic/jsonschema/1-0-0"

EVENT_TYPES = {
    "pv": "page_view",
    "pp": "page_ping",
    "se": "struct",
    "ev": "struct",
    "ue": "unstruct",
    "tr": "transaction",
    "ti": "transaction_item",
    "ad": "ad_impression",
}
PLATFORMS = frozenset({"web", "mob", "pc", "srv", "app", "tv", "cnsl", "iot", "headset"})

# Parameters copied as they are (after making them TSV-safe).
STRING_PARAMETERS = {
    "aid": "app_id", "tna": "name_tracker", "tv": "v_tracker", "uid": "user_id",
    "duid": "domain_userid", "fp": "user_fingerprint", "tz": "os_timezone", "lang": "br_lang",
    "cd": "br_colordepth", "page": "page_title", "refr": "page_referrer",
    "cs": "doc_charset", "se_ca": "se_category", "se_ac": "se_action", "se_la": "se_label",
    "se_pr": "se_property", "ev_ca": "se_category", "ev_ac": "se_action",
    "ev_la": "se_label", "ev_pr": "se_property", "tr_id": "tr_orderid",
    "tr_af": "tr_affiliation", "tr_ci": "tr_city", "tr_st": "tr_state", "tr_co": "tr_country",
    "tr_cu": "tr_currency", "ti_id": "ti_orderid", "ti_sk": "ti_sku", "ti_na": "ti_name",
    "ti_nm": "ti_name", "ti_ca": "ti_category", "ti_cu": "ti_currency",
}  # fmt: skip
INTEGER_PARAMETERS = {
    "tid": "txn_id", "vid": "domain_sessionidx", "pp_mix": "pp_xoffset_min",
    "pp_max": "pp_xoffset_max", "pp_miy": "pp_yoffset_min", "pp_may": "pp_yoffset_max",
    "ti_qu": "ti_quantity",
}  # fmt: skip
DECIMAL_PARAMETERS = {
    "se_va": "se_value", "ev_va": "se_value", "tr_tt": "tr_total", "tr_tx": "tr_tax",
    "tr_sh": "tr_shipping", "ti_pr": "ti_price",
}  # fmt: skip
BOOLEAN_PARAMETERS = {
    "f_pdf": "br_features_pdf", "f_fla": "br_features_flash", "f_java": "br_features_java",
    "f_dir": "br_features_director", "f_qt": "br_features_quicktime",
    "f_realp": "br_features_realplayer", "f_wma": "br_features_windowsmedia",
    "f_gears": "br_features_gears", "f_ag": "br_features_silverlight", "cookie": "br_cookies",
}  # fmt: skip
TIMESTAMP_PARAMETERS = {
    "dtm": "dvce_created_tstamp",
    "stm": "dvce_sent_tstamp",
    "ttm": "true_tstamp",
}
DIMENSION_PARAMETERS = {
    "res": ("dvce_screenwidth", "dvce_screenheight"),
    "vp": ("br_viewwidth", "br_viewheight"),
    "ds": ("doc_width", "doc_height"),
}

# Column widths of the atomic fields (characters); longer values are schema violations.
FIELD_LIMITS = {
    "app_id": 255, "platform": 255, "event": 128, "event_id": 36, "name_tracker": 128,
    "v_tracker": 100, "v_collector": 100, "v_etl": 100, "user_id": 255, "user_ipaddress": 128,
    "user_fingerprint": 128, "domain_userid": 128, "network_userid": 128, "geo_country": 2,
    "geo_region": 3, "geo_city": 75, "geo_zipcode": 15, "geo_region_name": 100,
    "ip_isp": 100, "ip_organization": 128, "ip_domain": 128, "ip_netspeed": 100,
    "page_url": 4096, "page_title": 2000, "page_referrer": 4096, "page_urlscheme": 16,
    "page_urlhost": 255, "page_urlpath": 3000, "page_urlquery": 6000,
    "page_urlfragment": 3000, "refr_urlscheme": 16, "refr_urlhost": 255,
    "refr_urlpath": 6000, "refr_urlquery": 6000, "refr_urlfragment": 3000,
    "refr_medium": 25, "refr_source": 50, "refr_term": 255, "mkt_medium": 255,
    "mkt_source": 255, "mkt_term": 255, "mkt_content": 500, "mkt_campaign": 255,
    "se_category": 1000, "se_action": 1000, "se_label": 4096, "se_property": 1000,
    "tr_orderid": 255, "tr_affiliation": 255, "tr_city": 255, "tr_state": 255,
    "tr_country": 255, "ti_orderid": 255, "ti_sku": 255, "ti_name": 255, "ti_category": 255,
    "useragent": 1000, "br_name": 50, "br_family": 50, "br_version": 50, "br_type": 50,
    "br_renderengine": 50, "br_lang": 255, "br_colordepth": 12, "os_name": 50,
    "os_family": 50, "os_manufacturer": 50, "os_timezone": 255, "dvce_type": 50,
    "doc_charset": 128, "tr_currency": 3, "ti_currency": 3, "base_currency": 3,
    "geo_timezone": 64, "mkt_clickid": 128, "mkt_network": 64, "etl_tags": 500,
    "refr_domain_userid": 128, "domain_sessionid": 128, "event_vendor": 1000,
    "event_name": 1000, "event_format": 128, "event_version": 128,
    "event_fingerprint": 128,
}  # fmt: skip

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# ASCII only: Python's int() and float() also take "1_000", "١٢" and full-width digits.
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")
_DIGITS = re.compile(r"[0-9]{1,15}")
_MAX_EPOCH_MS = 253402300799999  # 9999-12-31T23:59:59.999Z


def report(field: str, value: Any, expectation: str, keyword: str) -> dict[str, Any]:
    """A data report against the atomic schema: the parameter, what came, what was expected."""
    shown = value if not isinstance(value, str) or len(value) <= 100 else value[:100] + "…"
    return {
        "message": f"{field}: got {shown!r}, expected {expectation}",
        "path": field,
        "keyword": keyword,
        "targets": [],
    }


def clean(value: str) -> str:
    """Make a value TSV-safe: tabs become four spaces, other control characters go."""
    if "\t" in value:
        value = value.replace("\t", "    ")
    return _CONTROL.sub("", value)


def transform(parameters: dict[str, str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Map parameters onto atomic fields; return the fields and the problems found."""
    fields: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    _map_event_type(parameters, fields, problems)
    for name, value in parameters.items():
        converter = _CONVERTERS.get(name)
        if converter is None or value == "":
            continue
        problem = converter(name, value, fields)
        if problem:
            problems.append(problem)
    return fields, problems


def check_lengths(fields: dict[str, str]) -> list[dict[str, Any]]:
    """Reports for the fields longer than their column."""
    return [
        report(
            name, value, f"at most {FIELD_LIMITS[name]} characters, got {len(value)}", "maxLength"
        )
        for name, value in fields.items()
        if name in FIELD_LIMITS and len(value) > FIELD_LIMITS[name]
    ]


def split_url(url: str, prefix: str, fields: dict[str, str]) -> dict[str, Any] | None:
    """Fill ``<prefix>_urlscheme`` … ``_urlfragment`` from ``url``; a report if unreadable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        return report(f"{prefix}_url", url, f"a URL ({exc})", "format")
    if not parts.scheme or not parts.hostname:
        return report(f"{prefix}_url", url, "an absolute URL with scheme and host", "format")
    scheme = parts.scheme.lower()
    port = port or {"http": 80, "https": 443}.get(scheme)
    fields[f"{prefix}_urlscheme"] = scheme
    fields[f"{prefix}_urlhost"] = parts.hostname
    if port is not None:
        fields[f"{prefix}_urlport"] = str(port)
    _set_if(fields, f"{prefix}_urlpath", parts.path)
    _set_if(fields, f"{prefix}_urlquery", parts.query)
    _set_if(fields, f"{prefix}_urlfragment", parts.fragment)
    return None


def epoch_ms_to_tstamp(value: str) -> str | None:
    """``1700000000123`` → ``2023-11-14 22:13:20.123``; None if not a usable epoch."""
    if not _DIGITS.fullmatch(value):
        return None
    epoch_ms = int(value)
    if epoch_ms > _MAX_EPOCH_MS:
        return None
    return enriched.format_epoch_ms(epoch_ms)


def _map_event_type(
    parameters: dict[str, str], fields: dict[str, str], problems: list[dict[str, Any]]
) -> None:
    code = parameters.get("e")
    if not code:
        problems.append(report("e", code, f"one of {', '.join(EVENT_TYPES)}", "required"))
    elif code not in EVENT_TYPES:
        problems.append(report("e", code, f"one of {', '.join(EVENT_TYPES)}", "enum"))
    else:
        fields["event"] = EVENT_TYPES[code]


def _string(name: str, value: str, fields: dict[str, str]) -> None:
    fields[STRING_PARAMETERS[name]] = clean(value)


def _integer(name: str, value: str, fields: dict[str, str]) -> dict[str, Any] | None:
    if not _INTEGER.fullmatch(value):
        return report(name, value, "an integer", "type")
    number = int(value)
    if not -(2**31) <= number < 2**31:
        return report(name, value, "an integer that fits in 32 bits", "maximum")
    fields[INTEGER_PARAMETERS[name]] = str(number)
    return None


def _decimal(name: str, value: str, fields: dict[str, str]) -> dict[str, Any] | None:
    if not _DECIMAL.fullmatch(value.strip()):
        return report(name, value, "a decimal number", "type")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return report(name, value, "a finite decimal number", "type")
    fields[DECIMAL_PARAMETERS[name]] = value.strip()
    return None


def _boolean(name: str, value: str, fields: dict[str, str]) -> dict[str, Any] | None:
    if value not in ("0", "1"):
        return report(name, value, "1 or 0", "enum")
    fields[BOOLEAN_PARAMETERS[name]] = value
    return None


def _timestamp(name: str, value: str, fields: dict[str, str]) -> dict[str, Any] | None:
    tstamp = epoch_ms_to_tstamp(value)
    if tstamp is None:
        return report(name, value, "milliseconds since the epoch", "format")
    fields[TIMESTAMP_PARAMETERS[name]] = tstamp
    return None


def _dimensions(name: str, value: str, fields: dict[str, str]) -> dict[str, Any] | None:
    width, sep, height = value.partition("x")
    if (
        not (sep and _DIGITS.fullmatch(width) and _DIGITS.fullmatch(height))
        or max(len(width), len(height)) > 9
    ):
        return report(name, value, "width x height in pixels, such as 1024x768", "format")
    fields[DIMENSION_PARAMETERS[name][0]] = str(int(width))
    fields[DIMENSION_PARAMETERS[name][1]] = str(int(height))
    return None


def _uuid(field: str) -> Callable[[str, str, dict[str, str]], dict[str, Any] | None]:
    def convert(name: str, value: str, fields: dict[str, str]) -> dict[str, Any] | None:
        try:
            fields[field] = str(uuid.UUID(value))
        except ValueError:
            return report(name, value, "a UUID", "format")
        return None

    return convert


def _platform(name: str, value: str, fields: dict[str, str]) -> dict[str, Any] | None:
    if value not in PLATFORMS:
        return report(name, value, f"one of {', '.join(sorted(PLATFORMS))}", "enum")
    fields["platform"] = value
    return None


def _page_url(name: str, value: str, fields: dict[str, str]) -> dict[str, Any] | None:
    fields["page_url"] = clean(value)
    return split_url(fields["page_url"], "page", fields)


def _network_userid(name: str, value: str, fields: dict[str, str]) -> None:
    # tnuid (set by a tracker on the user's behalf) wins over nuid and over the cookie.
    if name == "tnuid" or "network_userid" not in fields:
        fields["network_userid"] = clean(value)


def _override(field: str) -> Callable[[str, str, dict[str, str]], None]:
    def convert(name: str, value: str, fields: dict[str, str]) -> None:
        fields[field] = clean(value)

    return convert


def _set_if(fields: dict[str, str], name: str, value: str) -> None:
    if value:
        fields[name] = clean(value)


_CONVERTERS: dict[str, Callable[[str, str, dict[str, str]], dict[str, Any] | None]] = {
    **dict.fromkeys(STRING_PARAMETERS, _string),
    **dict.fromkeys(INTEGER_PARAMETERS, _integer),
    **dict.fromkeys(DECIMAL_PARAMETERS, _decimal),
    **dict.fromkeys(BOOLEAN_PARAMETERS, _boolean),
    **dict.fromkeys(TIMESTAMP_PARAMETERS, _timestamp),
    **dict.fromkeys(DIMENSION_PARAMETERS, _dimensions),
    "eid": _uuid("event_id"),
    "sid": _uuid("domain_sessionid"),
    "p": _platform,
    "url": _page_url,
    "nuid": _network_userid,
    "tnuid": _network_userid,
    "ip": _override("user_ipaddress"),
    "ua": _override("useragent"),
}


def derive_tstamp(fields: dict[str, str]) -> str:
    """``derived_tstamp``: the true timestamp, else the collector time less the send delay."""
    if "true_tstamp" in fields:
        return fields["true_tstamp"]
    collector = fields["collector_tstamp"]
    created, sent = fields.get("dvce_created_tstamp"), fields.get("dvce_sent_tstamp")
    if not created or not sent:
        return collector
    created_at, sent_at, collected_at = (
        datetime.datetime.fromisoformat(t).replace(tzinfo=datetime.UTC)
        for t in (created, sent, collector)
    )
    if created_at >= sent_at:
        return collector
    return enriched.format_timestamp(collected_at - (sent_at - created_at))
