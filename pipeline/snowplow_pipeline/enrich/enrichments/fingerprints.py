"""Event fingerprint (``event_fingerprint_config``): a hash of the event's parameters.

The fingerprint covers the tracker-protocol parameters of the raw event except
``excludeParameters``, in name order so that parameter order never changes it: each name and
value is followed by the ASCII unit separator, and the whole text is hashed as UTF-8 with the
configured algorithm (MD5 unless configured; SHA1, SHA256, SHA384, SHA512 from 1-0-1), written
as lowercase hex into ``event_fingerprint``. Excluding ``stm`` and ``eid`` makes a retried send
of the same event produce the same fingerprint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from snowplow_pipeline.enrich import adapters
from snowplow_pipeline.enrich.enrichments import configs

ALGORITHMS: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA384": hashlib.sha384,
    "SHA512": hashlib.sha512,
}
SEPARATOR = "\x1f"


class EventFingerprint:
    def __init__(self, *, algorithm: Callable[[bytes], Any], excluded: frozenset[str]) -> None:
        self.algorithm = algorithm
        self.excluded = excluded

    def enrich(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> None:
        fields["event_fingerprint"] = fingerprint(
            event.parameters, algorithm=self.algorithm, excluded=self.excluded
        )


def fingerprint(
    parameters: dict[str, str], *, algorithm: Callable[[bytes], Any], excluded: frozenset[str]
) -> str:
    text = "".join(
        f"{name}{SEPARATOR}{parameters[name]}{SEPARATOR}"
        for name in sorted(parameters)
        if name not in excluded
    )
    return str(algorithm(text.encode("utf-8")).hexdigest())


def build(config: configs.EnrichmentConfig) -> EventFingerprint:
    return EventFingerprint(
        algorithm=ALGORITHMS[config.parameters["hashAlgorithm"]],
        excluded=frozenset(config.parameters["excludeParameters"]),
    )
