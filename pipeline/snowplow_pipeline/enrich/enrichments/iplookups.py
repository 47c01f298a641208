"""IP lookups (``ip_lookups``): ``geo_*`` and ``ip_*`` fields from MaxMind databases.

Each configured database (``geo``: a City database; ``isp``; ``domain``; ``connectionType``) is
a local ``.mmdb`` file opened once at load with the ``maxminddb`` reader (its C extension when
available, memory-mapped). The address looked up is ``user_ipaddress``, before the IP
anonymisation enrichment masks it. An address a database does not know, or a value that is no
IP address, leaves the fields empty; a database that cannot be read at lookup time is an
enrichment failure, so that the event is kept as a bad row instead of passing without geo.
What an address gave is kept in an LRU, so that a visitor's later events cost one dictionary
hit; failures are not kept.

Remote databases are never downloaded: a remote ``uri`` is a config problem asking for a local
copy. The ``asn`` database of 2-0-1 is accepted but not used yet.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import maxminddb

from snowplow_pipeline.enrich import adapters, transform
from snowplow_pipeline.enrich.enrichments import assets, configs

logger = logging.getLogger(__name__)

DATABASES = ("geo", "isp", "domain", "connectionType")
CACHED_ADDRESSES = 4096


class IpLookups:
    def __init__(self, *, identity: configs.Identity, readers: dict[str, maxminddb.Reader]) -> None:
        self.identity = identity
        self.readers = readers
        self.fillers = [(name, reader, _FILLERS[name]) for name, reader in readers.items()]
        # Events from one visitor share an address: remember what each address gave.
        self.lookup = functools.lru_cache(maxsize=CACHED_ADDRESSES)(self._lookup)

    def enrich(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> None:
        address = fields.get("user_ipaddress")
        if address:
            fields.update(self.lookup(address))

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()

    def _lookup(self, address: str) -> tuple[tuple[str, str], ...]:
        """The fields every database gives for ``address``; failures are raised, not cached."""
        found: dict[str, str] = {}
        for name, reader, fill in self.fillers:
            try:
                record = reader.get(address)
            except ValueError:
                # Not an IP address, or IPv6 in an IPv4-only database: nothing to look up.
                continue
            except (maxminddb.InvalidDatabaseError, OSError) as exc:
                raise self.identity.failure(f"the {name} database cannot be read: {exc}") from exc
            if isinstance(record, dict):
                fill(record, found)
        return tuple(found.items())


def build(config: configs.EnrichmentConfig) -> IpLookups | None:
    if "asn" in config.parameters:
        logger.warning("The asn database of the ip_lookups enrichment is not used.")
    readers = {}
    for name in DATABASES:
        asset = config.parameters.get(name)
        if asset is None:
            continue
        reader = _open(config, name=name, uri=asset["uri"], database=asset["database"])
        if reader is not None:
            readers[name] = reader
    if config.problems:
        for reader in readers.values():
            reader.close()
        return None
    return IpLookups(identity=config.identity, readers=readers)


def _open(
    config: configs.EnrichmentConfig, *, name: str, uri: str, database: str
) -> maxminddb.Reader | None:
    if assets.is_remote(uri):
        config.problem(
            f"{name}.uri",
            f"got {uri!r}: remote databases are not downloaded; download {database} "
            "and set uri to the local folder that holds it",
        )
        return None
    file = assets.local_file(config, path=f"{name}.database", uri=uri, database=database)
    if file is None:
        return None
    try:
        return maxminddb.open_database(str(file))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        config.problem(f"{name}.database", f"{str(file)!r} is not a MaxMind database: {exc}")
        return None


def _fill_geo(record: dict[str, Any], fields: dict[str, str]) -> None:
    country = record.get("country") or record.get("registered_country") or {}
    subdivisions = record.get("subdivisions") or [{}]
    location = record.get("location") or {}
    _set(fields, "geo_country", country.get("iso_code"))
    _set(fields, "geo_region", subdivisions[0].get("iso_code"))
    _set(fields, "geo_region_name", _english(subdivisions[0]))
    _set(fields, "geo_city", _english(record.get("city") or {}))
    _set(fields, "geo_zipcode", (record.get("postal") or {}).get("code"))
    _set(fields, "geo_latitude", location.get("latitude"))
    _set(fields, "geo_longitude", location.get("longitude"))
    _set(fields, "geo_timezone", location.get("time_zone"))


def _fill_isp(record: dict[str, Any], fields: dict[str, str]) -> None:
    _set(fields, "ip_isp", record.get("isp"))
    _set(fields, "ip_organization", record.get("organization"))


def _fill_domain(record: dict[str, Any], fields: dict[str, str]) -> None:
    _set(fields, "ip_domain", record.get("domain"))


def _fill_connection_type(record: dict[str, Any], fields: dict[str, str]) -> None:
    _set(fields, "ip_netspeed", record.get("connection_type"))


_FILLERS = {
    "geo": _fill_geo,
    "isp": _fill_isp,
    "domain": _fill_domain,
    "connectionType": _fill_connection_type,
}


def _english(record: dict[str, Any]) -> str | None:
    names = record.get("names")
    return names.get("en") if isinstance(names, dict) else None


def _set(fields: dict[str, str], name: str, value: Any) -> None:
    if value is not None and value != "":
        fields[name] = transform.clean(str(value))
