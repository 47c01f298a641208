"""IP anonymisation (``anon_ip``): the end of ``user_ipaddress`` replaced by ``x``.

IPv4 loses its last ``anonOctets`` octets (``203.0.113.9`` with 2 → ``203.0.x.x``). IPv6 is
written out in full, without leading zeros, and loses its last ``anonSegments`` segments
(``2001:db8::1`` with 3 → ``2001:db8:0:0:0:x:x:x``). Config 1-0-0 has no ``anonSegments``;
IPv6 addresses then lose as many segments as ``anonOctets`` says rather than none, because a
user who asked for anonymisation should never get a full address. A value that is no IP
address is left as it is. Runs after IP lookups, which need the whole address.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from snowplow_pipeline.enrich import adapters
from snowplow_pipeline.enrich.enrichments import configs


class IpAnonymisation:
    def __init__(self, *, octets: int, segments: int) -> None:
        self.octets = octets
        self.segments = segments

    def enrich(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> None:
        address = fields.get("user_ipaddress")
        if address:
            fields["user_ipaddress"] = anonymise(
                address, octets=self.octets, segments=self.segments
            )


def anonymise(address: str, *, octets: int, segments: int) -> str:
    if ":" in address:
        return _anonymise_v6(address, segments)
    parts = address.split(".")
    if len(parts) != 4 or not all(part.isdigit() for part in parts):
        return address
    return ".".join(parts[: 4 - octets] + ["x"] * octets)


def _anonymise_v6(address: str, segments: int) -> str:
    try:
        parsed = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    groups = [format(int(group, 16), "x") for group in parsed.exploded.split(":")]
    return ":".join(groups[: 8 - segments] + ["x"] * segments)


def build(config: configs.EnrichmentConfig) -> IpAnonymisation:
    octets = config.parameters["anonOctets"]
    return IpAnonymisation(octets=octets, segments=config.parameters.get("anonSegments", octets))
