"""The collector payload: the message format between the collector and enrich.

One collector payload is one HTTP request as the collector saw it. On the wire it is the Thrift
binary encoding of upstream's ``CollectorPayload`` (schema 1-0-0), so our collector and upstream
enrich, or upstream's collector and our enrich, can replace each other. The Thrift struct is
declared in ``collector_payload.thrift`` and compiled at import time by thriftpy2.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any, ClassVar, overload
from urllib.parse import unquote_plus

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.thrift import TDecodeException
from thriftpy2.transport import TMemoryBuffer
from thriftpy2.utils import deserialize as thrift_deserialize
from thriftpy2.utils import serialize as thrift_serialize

SCHEMA = "iglu:com.snowplowanalytics.snowplow/CollectorPayload/thrift/1-0-0"

_thrift = thriftpy2.load(
    str(Path(__file__).with_name("collector_payload.thrift")),
    module_name="collector_payload_thrift",
)
_protocol = TBinaryProtocolFactory()


# The attribute of CollectorPayload for each Thrift field whose name differs.
_ATTRIBUTES = {
    "ipAddress": "ip_address",
    "timestamp": "timestamp_ms",
    "userAgent": "user_agent",
    "refererUri": "referer_uri",
    "headers": "headers_or_none",
    "contentType": "content_type",
    "networkUserId": "network_user_id",
}


class PayloadFormatError(ValueError):
    """The bytes are not a Thrift CollectorPayload this version can read."""


@dataclasses.dataclass(slots=True)
class CollectorPayload:
    """One request as received by the collector. Times are milliseconds since the epoch."""

    ip_address: str
    timestamp_ms: int
    collector: str
    encoding: str = "UTF-8"
    user_agent: str | None = None
    referer_uri: str | None = None
    path: str | None = None
    querystring: str | None = None
    body: str | None = None
    headers: list[str] = dataclasses.field(default_factory=list)
    content_type: str | None = None
    hostname: str | None = None
    network_user_id: str | None = None
    schema: str = SCHEMA

    # thriftpy2's protocols write any object with a ``thrift_spec`` by reading the attribute
    # each field names; this copy of the generated spec names ours, so a payload is written
    # without building the generated struct first (same bytes; a test holds them so).
    thrift_spec: ClassVar[dict[int, tuple[Any, ...]]] = {
        field_id: (kind, _ATTRIBUTES.get(name, name), *rest)
        for field_id, (kind, name, *rest) in _thrift.CollectorPayload.thrift_spec.items()
    }

    @property
    def headers_or_none(self) -> list[str] | None:
        """The headers as the Thrift struct has them: absent rather than an empty list."""
        return self.headers or None

    @property
    def vendor_and_version(self) -> tuple[str, str]:
        """The API the request was sent to: ``/vendor/version``, or tp1 for ``/i``."""
        parts = (self.path or "").strip("/").split("/")
        if parts in (["i"], ["ice.png"]):
            return "com.snowplowanalytics.snowplow", "tp1"
        if len(parts) == 2 and parts[0] == "r":
            return "r", parts[1]
        if len(parts) == 2:
            return parts[0], parts[1]
        return "", ""


def serialize(payload: CollectorPayload) -> bytes:
    """Encode as Thrift binary, the bytes published to ``RawEvents``."""
    buffer = TMemoryBuffer()
    try:
        _protocol.get_protocol(buffer).write_struct(payload)
        return buffer.getvalue()
    except (UnicodeEncodeError, TDecodeException):
        pass  # text that is not valid UTF-8: rare, so it takes the slow way, made valid first
    return thrift_serialize(generated_struct(payload), _protocol)


def generated_struct(payload: CollectorPayload) -> Any:
    """thriftpy2's generated struct for ``payload``, its text made valid UTF-8 (``valid_utf8``)."""
    return _thrift.CollectorPayload(
        schema=payload.schema,
        ipAddress=valid_utf8(payload.ip_address),
        timestamp=payload.timestamp_ms,
        encoding=payload.encoding,
        collector=payload.collector,
        userAgent=valid_utf8(payload.user_agent),
        refererUri=valid_utf8(payload.referer_uri),
        path=valid_utf8(payload.path),
        querystring=valid_utf8(payload.querystring),
        body=valid_utf8(payload.body),
        headers=[valid_utf8(header) for header in payload.headers] or None,
        contentType=valid_utf8(payload.content_type),
        hostname=valid_utf8(payload.hostname),
        networkUserId=valid_utf8(payload.network_user_id),
    )


@overload
def valid_utf8(text: str) -> str: ...
@overload
def valid_utf8(text: None) -> None: ...
def valid_utf8(text: str | None) -> str | None:
    """Text Thrift can encode. HTTP servers hand over bytes that are not UTF-8 (in a header,
    say) as lone surrogates; those become U+FFFD here rather than failing the request."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:  # the original bytes, as aiohttp keeps them, then each bad one as U+FFFD
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "replace")
    return text


def deserialize(data: bytes) -> CollectorPayload:
    """Decode Thrift binary; raise ``PayloadFormatError`` for anything else."""
    try:
        record = thrift_deserialize(_thrift.CollectorPayload(), data, _protocol)
    except (TDecodeException, EOFError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise PayloadFormatError(f"not a Thrift CollectorPayload: {exc}") from exc
    missing = [
        name
        for name in ("schema", "ipAddress", "timestamp", "collector")
        if getattr(record, name) is None
    ]
    if missing:
        raise PayloadFormatError(f"CollectorPayload lacks required fields: {', '.join(missing)}")
    return CollectorPayload(
        schema=record.schema,
        ip_address=record.ipAddress,
        timestamp_ms=record.timestamp,
        encoding=record.encoding or "UTF-8",
        collector=record.collector,
        user_agent=record.userAgent,
        referer_uri=record.refererUri,
        path=record.path,
        querystring=record.querystring,
        body=record.body,
        headers=list(record.headers or []),
        content_type=record.contentType,
        hostname=record.hostname,
        network_user_id=record.networkUserId,
    )


def to_badrow_json(payload: CollectorPayload) -> dict[str, Any]:
    """The payload in the shape bad rows carry (``adapter_failures``, tracker protocol ones)."""
    vendor, version = payload.vendor_and_version
    return {
        "vendor": vendor,
        "version": version,
        "querystring": parse_querystring_pairs(payload.querystring),
        "contentType": payload.content_type,
        "body": payload.body,
        "collector": payload.collector,
        "encoding": payload.encoding,
        "hostname": payload.hostname,
        "timestamp": format_iso(payload.timestamp_ms),
        "ipAddress": payload.ip_address,
        "useragent": payload.user_agent,
        "refererUri": payload.referer_uri,
        "headers": payload.headers,
        "networkUserId": payload.network_user_id,
    }


def parse_querystring_pairs(querystring: str | None) -> list[dict[str, str | None]]:
    """Name/value pairs as they appear, without failing on bad encoding (for bad rows)."""
    pairs: list[dict[str, str | None]] = []
    for part in (querystring or "").split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        pairs.append({"name": unquote_plus(name), "value": unquote_plus(value) if sep else None})
    return pairs


def format_iso(timestamp_ms: int) -> str:
    """ISO 8601 in UTC with milliseconds, as bad rows write timestamps."""
    moment = datetime.datetime.fromtimestamp(timestamp_ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
