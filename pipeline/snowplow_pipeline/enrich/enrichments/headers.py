"""HTTP header extractor (``http_header_extractor_config``): headers as ``http_header`` entities.

Each header of the request that carried the event whose whole name matches ``headersPattern``
becomes one ``iglu:org.ietf/http_header/jsonschema/1-0-0`` entity. The pattern is compiled
once at load and matched ignoring case, because HTTP header names are case-insensitive and
proxies and HTTP/2 change their case. Headers are stored by the collector as ``Name: value``.
"""

from __future__ import annotations

import re
from typing import Any

from snowplow_pipeline.enrich import adapters
from snowplow_pipeline.enrich.enrichments import configs

HEADER_SCHEMA = "iglu:org.ietf/http_header/jsonschema/1-0-0"
REMEMBERED_NAMES = 1024


class HeaderExtractor:
    def __init__(self, *, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        # Requests repeat the same few header names: remember each verdict (bounded).
        self._verdicts: dict[str, bool] = {}

    def enrich(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> None:
        for header in event.payload.headers:
            name, _, value = header.partition(":")
            name = name.strip()
            if self._is_wanted(name):
                entity = {"name": name, "value": value.strip()}
                derived.append({"schema": HEADER_SCHEMA, "data": entity})

    def _is_wanted(self, name: str) -> bool:
        verdict = self._verdicts.get(name)
        if verdict is None:
            if len(self._verdicts) >= REMEMBERED_NAMES:
                self._verdicts.clear()
            verdict = self._verdicts[name] = self.pattern.fullmatch(name) is not None
        return verdict


def build(config: configs.EnrichmentConfig) -> HeaderExtractor | None:
    try:
        pattern = re.compile(config.parameters["headersPattern"], re.IGNORECASE)
    except re.error as exc:
        config.problem("headersPattern", f"not a valid regular expression: {exc}")
        return None
    return HeaderExtractor(pattern=pattern)
