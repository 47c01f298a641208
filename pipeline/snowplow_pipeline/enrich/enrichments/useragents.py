"""UA parser (``ua_parser_config``): the ``ua_parser_context`` entity from the useragent.

Parsing uses the maintained ``ua-parser`` library and its bundled uap-core rules, or a local
rules file (``uri`` a local folder, ``database`` a ``regexes.yaml``/``.json`` there). Remote
rule files are never downloaded: a remote ``uri`` falls back to the bundled rules, with a
warning. An event without a useragent gets no entity.

A parse costs up to milliseconds (hundreds of regexes), but a pipeline sees few distinct
user agents, so finished entities are kept in an LRU keyed by the useragent string. Cached
entities are shared between events: nothing downstream may change them in place (the PII
enrichment copies what it hashes).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ua_parser
from ua_parser import loaders

from snowplow_pipeline.enrich import adapters
from snowplow_pipeline.enrich.enrichments import assets, configs

logger = logging.getLogger(__name__)

CONTEXT_SCHEMA = "iglu:com.snowplowanalytics.snowplow/ua_parser_context/jsonschema/1-0-0"
CACHED_USER_AGENTS = 4096


def _rule_errors() -> tuple[type[BaseException], ...]:
    """What reading a broken rules file can raise: I/O, JSON, YAML, missing keys, bad regexes."""
    errors: tuple[type[BaseException], ...] = (OSError, ValueError, LookupError, TypeError)
    try:
        import yaml
    except ImportError:
        return (*errors, re.error)
    return (*errors, re.error, yaml.YAMLError)


RULE_ERRORS = _rule_errors()


class UserAgentParser:
    def __init__(self, *, matchers: ua_parser.Matchers) -> None:
        self.parser = ua_parser.Parser(ua_parser.BasicResolver(matchers))
        self.context = functools.lru_cache(maxsize=CACHED_USER_AGENTS)(self._parse)

    def enrich(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> None:
        useragent = fields.get("useragent")
        if useragent:
            derived.append(self.context(useragent))

    def _parse(self, useragent: str) -> dict[str, Any]:
        result = self.parser.parse(useragent).with_defaults()
        agent, system = result.user_agent, result.os
        return {
            "schema": CONTEXT_SCHEMA,
            "data": {
                "useragentFamily": agent.family,
                "useragentMajor": agent.major,
                "useragentMinor": agent.minor,
                "useragentPatch": agent.patch,
                "useragentVersion": _version(agent.family, agent.major, agent.minor, agent.patch),
                "osFamily": system.family,
                "osMajor": system.major,
                "osMinor": system.minor,
                "osPatch": system.patch,
                "osPatchMinor": system.patch_minor,
                "osVersion": _version(
                    system.family, system.major, system.minor, system.patch, system.patch_minor
                ),
                "deviceFamily": result.device.family,
            },
        }


def build(config: configs.EnrichmentConfig) -> UserAgentParser | None:
    uri, database = config.parameters.get("uri"), config.parameters.get("database")
    if uri is None or database is None:
        return UserAgentParser(matchers=loaders.load_builtins())
    if assets.is_remote(uri):
        logger.warning(
            "The UA parser rules %s at %s are not downloaded; using the bundled rules.",
            database,
            uri,
        )
        return UserAgentParser(matchers=loaders.load_builtins())
    file = assets.local_file(config, path="database", uri=uri, database=database)
    if file is None:
        return None
    matchers = _read_rules(file, config)
    return None if matchers is None else UserAgentParser(matchers=matchers)


def _read_rules(file: Path, config: configs.EnrichmentConfig) -> ua_parser.Matchers | None:
    load: Callable[[Path], ua_parser.Matchers]
    if file.suffix == ".json":
        load = loaders.load_json
    elif loaders.load_yaml is not None:
        load = loaders.load_yaml
    else:
        config.problem("database", f"{str(file)!r}: reading YAML rules needs PyYAML installed")
        return None
    try:
        return load(file)
    except RULE_ERRORS as exc:
        config.problem("database", f"cannot read the UA parser rules {str(file)!r}: {exc}")
        return None


def _version(family: str, *parts: str | None) -> str:
    """``Chrome`` + 118, 0, 5993 → ``Chrome 118.0.5993``; parts stop at the first missing one."""
    known = []
    for part in parts:
        if part is None:
            break
        known.append(part)
    return f"{family} {'.'.join(known)}" if known else family
