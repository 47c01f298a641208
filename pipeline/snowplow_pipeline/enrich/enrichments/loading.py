"""Loading: a folder of upstream's enrichment config files in, enrichments in run order out.

Each ``*.json`` file holds one self-describing config (``{"schema": "iglu:…/<name>/jsonschema/
<version>", "data": {"vendor", "name", "enabled", "parameters"}}``) or the combined list form
(``iglu:com.snowplowanalytics.snowplow/enrichments/jsonschema/1-0-*`` with an array of them).
Every config is validated against our own compact config schema for its name and version,
which lives in the embedded Iglu registry, so that the rules are data a user can read. An
enabled config is then built, which finds the problems a schema cannot see (a regex that does
not compile, a database file that is missing). All problems of all files are collected and
raised together as one ``EnrichmentConfigError``, each as ``file: JSON path: what``.

Only ``*.json`` files are read, so a README beside them does no harm. Disabled configs are
validated but not built: upstream's default folders ship disabled configs whose remote
databases this Mini could never read. Upstream enrichments this Mini does not implement are
skipped when disabled and an error when enabled. The run order is fixed by ``KINDS``, never by
file names.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snowplow_pipeline.enrich import processing
from snowplow_pipeline.enrich.enrichments import (
    anonymisation,
    campaigns,
    configs,
    cookies,
    fingerprints,
    headers,
    iplookups,
    pseudonymisation,
    referers,
    useragents,
)
from snowplow_pipeline.iglu import embedded, schemakeys, validation

logger = logging.getLogger(__name__)

SNOWPLOW = "com.snowplowanalytics.snowplow"
ENRICHMENTS_VENDOR = "com.snowplowanalytics.snowplow.enrichments"
COMBINED = schemakeys.SchemaCriterion.parse(f"iglu:{SNOWPLOW}/enrichments/jsonschema/1-0-*")


@dataclasses.dataclass(frozen=True, slots=True)
class Kind:
    """One enrichment this Mini runs: its config schema name, vendor, versions and builder."""

    name: str
    vendor: str
    versions: tuple[str, ...]
    build: Callable[[configs.EnrichmentConfig], processing.Enrichment | None]

    def schema_keys(self) -> list[str]:
        return [f"iglu:{self.vendor}/{self.name}/jsonschema/{v}" for v in self.versions]


# The execution order: upstream's documented order, restricted to what this Mini runs. IP
# lookups need the whole address, so they come before IP anonymisation; PII comes last so that
# it can hash what the other enrichments added.
KINDS: tuple[Kind, ...] = (
    Kind("ua_parser_config", SNOWPLOW, ("1-0-0", "1-0-1"), useragents.build),
    Kind("referer_parser", SNOWPLOW, ("1-0-0", "2-0-0", "2-0-1"), referers.build),
    Kind("campaign_attribution", SNOWPLOW, ("1-0-0", "1-0-1"), campaigns.build),
    Kind("event_fingerprint_config", SNOWPLOW, ("1-0-0", "1-0-1"), fingerprints.build),
    Kind("cookie_extractor_config", SNOWPLOW, ("1-0-0",), cookies.build),
    Kind("http_header_extractor_config", ENRICHMENTS_VENDOR, ("1-0-0",), headers.build),
    Kind("ip_lookups", SNOWPLOW, ("2-0-0", "2-0-1"), iplookups.build),
    Kind("anon_ip", SNOWPLOW, ("1-0-0", "1-0-1"), anonymisation.build),
    Kind("pii_enrichment_config", ENRICHMENTS_VENDOR, ("2-0-0", "2-0-1"), pseudonymisation.build),
)
KINDS_BY_NAME = {kind.name: kind for kind in KINDS}

# Upstream enrichments this Mini does not run (yet): fine when disabled, an error when enabled.
NOT_IMPLEMENTED = frozenset({
    "iab_spiders_and_robots_enrichment", "user_agent_utils_config", "currency_conversion_config",
    "cross_navigation_config", "weather_enrichment_config", "yauaa_enrichment_config",
    "asn_lookups", "bot_detection_enrichment_config", "javascript_script_config",
    "sql_query_enrichment_config", "api_request_enrichment_config",
    "event_spec_enrichment_config",
})  # fmt: skip

EnrichmentConfigError = configs.EnrichmentConfigError


@dataclasses.dataclass(slots=True)
class _Loading:
    """What one ``load_enrichments`` call has found so far."""

    folder: Path
    problems: list[str] = dataclasses.field(default_factory=list)
    enabled: dict[str, configs.EnrichmentConfig] = dataclasses.field(default_factory=dict)


def load_enrichments(folder: Path) -> list[processing.Enrichment]:
    """The enabled enrichments of ``folder``, in execution order.

    Raises ``EnrichmentConfigError`` listing every problem of every file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EnrichmentConfigError([f"{folder}: not a folder of enrichment configs"])
    loading = _Loading(folder=folder)
    for file in sorted(folder.glob("*.json")):
        envelope = _read_json(file, loading.problems)
        if envelope is not None:
            _accept(envelope, loading=loading, source=file.name, location="", is_top=True)

    # Build the enabled ones in execution order; builders report what schemas cannot check.
    built: list[processing.Enrichment] = []
    for kind in KINDS:
        config = loading.enabled.get(kind.name)
        if config is None:
            continue
        enrichment = kind.build(config)
        loading.problems.extend(config.problems)
        if enrichment is not None:
            built.append(enrichment)

    if loading.problems:
        close_enrichments(built)
        raise EnrichmentConfigError(loading.problems)
    logger.info(
        "Enrichments enabled, in execution order: %s.",
        ", ".join(
            loading.enabled[kind.name].identity.schema_key
            for kind in KINDS
            if kind.name in loading.enabled
        )
        or "none",
    )
    return built


def close_enrichments(enrichments: list[processing.Enrichment]) -> None:
    """Release what enrichments hold open (database readers); safe to call more than once."""
    for enrichment in enrichments:
        close = getattr(enrichment, "close", None)
        if close is not None:
            close()


def _read_json(file: Path, problems: list[str]) -> Any:
    try:
        return json.loads(file.read_bytes())
    except OSError as exc:
        problems.append(f"{file.name}: cannot read ({exc.strerror or exc})")
    except ValueError as exc:
        problems.append(f"{file.name}: not valid JSON ({exc})")
    return None


def _accept(envelope: Any, *, loading: _Loading, source: str, location: str, is_top: bool) -> None:
    """Check one self-describing config and remember it if it is enabled and valid."""
    where = location.rstrip(".") or "$"
    if not isinstance(envelope, dict) or "data" not in envelope:
        loading.problems.append(
            f"{source}: {where}: expected a self-describing JSON object with schema and data"
        )
        return
    key = _schema_key(envelope.get("schema"), loading=loading, where=f"{source}: {location}schema")
    if key is None:
        return
    if is_top and COMBINED.matches(key):
        _accept_list(envelope["data"], loading=loading, source=source)
        return
    kind = _kind(key, envelope["data"], loading=loading, where=f"{source}: {location}schema")
    if kind is None:
        return
    reports = _validate(key, envelope["data"])
    for report in reports:
        message = report["message"].removeprefix(f"{report['path']}: ")
        path = "data" + report["path"][1:]
        loading.problems.append(f"{source}: {location}{path}: {message}")
    if not reports and envelope["data"]["enabled"]:
        _enable(kind, key, envelope["data"], loading=loading, source=source, location=location)


def _accept_list(items: Any, *, loading: _Loading, source: str) -> None:
    if not isinstance(items, list):
        loading.problems.append(f"{source}: data: expected an array of enrichment configs")
        return
    for index, item in enumerate(items):
        _accept(item, loading=loading, source=source, location=f"data[{index}].", is_top=False)


def _schema_key(uri: Any, *, loading: _Loading, where: str) -> schemakeys.SchemaKey | None:
    try:
        return schemakeys.SchemaKey.parse(uri)
    except schemakeys.SchemaKeyError as exc:
        loading.problems.append(f"{where}: {exc}")
        return None
    except (TypeError, AttributeError):
        loading.problems.append(f"{where}: got {uri!r}, expected an Iglu URI string")
        return None


def _kind(key: schemakeys.SchemaKey, data: Any, *, loading: _Loading, where: str) -> Kind | None:
    """The enrichment ``key`` configures, or None (with a problem unless it is skipped)."""
    kind = KINDS_BY_NAME.get(key.name)
    if kind is not None and key.uri in kind.schema_keys():
        return kind
    if kind is not None:
        expected = ", ".join(kind.schema_keys())
        loading.problems.append(f"{where}: got {key.uri}, expected one of {expected}")
    elif key.name in NOT_IMPLEMENTED:
        if isinstance(data, dict) and data.get("enabled") is False:
            logger.info("Skipping the disabled %s config: this Mini does not run it.", key.name)
        else:
            loading.problems.append(
                f"{where}: the {key.name} enrichment is not available in this Mini; "
                "set data.enabled to false or remove the config"
            )
    else:
        supported = ", ".join(KINDS_BY_NAME)
        loading.problems.append(
            f"{where}: got {key.uri}, which names no known enrichment; expected one of {supported}"
        )
    return None


def _enable(
    kind: Kind,
    key: schemakeys.SchemaKey,
    data: dict[str, Any],
    *,
    loading: _Loading,
    source: str,
    location: str,
) -> None:
    other = loading.enabled.get(kind.name)
    if other is not None:
        loading.problems.append(
            f"{source}: {location}data.enabled: {other.source} {other.location}already enables "
            f"{kind.name}; only one instance of each enrichment may be enabled"
        )
        return
    loading.enabled[kind.name] = configs.EnrichmentConfig(
        identity=configs.Identity(schema_key=key.uri, identifier=kind.name),
        parameters=data["parameters"],
        data=data,
        folder=loading.folder,
        source=source,
        location=location,
    )


def _validate(key: schemakeys.SchemaKey, data: Any) -> list[dict[str, Any]]:
    return validation.validate(key, _config_schema(key), data)


@functools.cache
def _config_schema(key: schemakeys.SchemaKey) -> dict[str, Any]:
    file = embedded.embedded_registry().find_file(key)
    if file is None:
        raise LookupError(f"the embedded registry lacks the config schema {key.uri}")
    schema: dict[str, Any] = json.loads(file.read_bytes())
    return schema
