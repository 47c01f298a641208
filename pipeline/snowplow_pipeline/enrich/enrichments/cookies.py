"""Cookie extractor (``cookie_extractor_config``): chosen cookies as ``http_cookie`` entities.

The ``Cookie`` headers of the request that carried the event are split into ``name=value``
pairs; each pair whose name is one of ``cookies`` becomes one
``iglu:org.ietf/http_cookie/jsonschema/1-0-0`` entity, in the order the browser sent them.
Values are kept as sent (no URL decoding), as upstream does.
"""

from __future__ import annotations

from typing import Any

from snowplow_pipeline.enrich import adapters
from snowplow_pipeline.enrich.enrichments import configs

COOKIE_SCHEMA = "iglu:org.ietf/http_cookie/jsonschema/1-0-0"


class CookieExtractor:
    def __init__(self, *, names: frozenset[str]) -> None:
        self.names = names

    def enrich(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> None:
        for header in event.payload.headers:
            name, _, value = header.partition(":")
            if name.strip().lower() == "cookie":
                self._add_cookies(value, derived)

    def _add_cookies(self, header_value: str, derived: list[dict[str, Any]]) -> None:
        for pair in header_value.split(";"):
            name, _, value = pair.strip().partition("=")
            if name in self.names:
                derived.append({"schema": COOKIE_SCHEMA, "data": {"name": name, "value": value}})


def build(config: configs.EnrichmentConfig) -> CookieExtractor:
    return CookieExtractor(names=frozenset(config.parameters["cookies"]))
