"""The Iglu resolver config of a SnowplowMini, as the standard self-describing JSON.

Registries with an API key need that key in the file, so the rendered config is stored in a
Secret, never in a ConfigMap. The keys themselves are looked up by the reconciler (I/O) and
passed in by registry name; this module stays pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snowplow_operator import specs

SCHEMA = "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3"
IGLU_CENTRAL = {
    "name": "Iglu Central",
    "priority": 0,
    "vendorPrefixes": ["com.snowplowanalytics"],
    "connection": {"http": {"uri": "http://iglucentral.com"}},
}
CACHE_TTL_SECONDS = 600


def render(iglu: specs.Iglu, api_keys: Mapping[str, str]) -> dict[str, Any]:
    """The resolver config; ``api_keys`` maps a registry name to its key from its Secret."""
    repositories: list[dict[str, Any]] = [IGLU_CENTRAL] if iglu.iglu_central else []
    for registry in iglu.registries:
        http: dict[str, Any] = {"uri": registry.uri}
        if registry.name in api_keys:
            http["apikey"] = api_keys[registry.name]
        repositories.append(
            {
                "name": registry.name,
                "priority": registry.priority,
                "vendorPrefixes": list(registry.vendor_prefixes),
                "connection": {"http": http},
            }
        )
    return {
        "schema": SCHEMA,
        "data": {
            "cacheSize": iglu.cache_size,
            "cacheTtl": CACHE_TTL_SECONDS,
            "repositories": repositories,
        },
    }
