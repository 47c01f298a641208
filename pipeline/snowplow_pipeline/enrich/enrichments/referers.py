"""Referer parser (``referer_parser``): ``refr_medium``, ``refr_source`` and ``refr_term``.

The referrer's host (and, for entries with a path, its path) is looked up in a referer
database in referer-parser's JSON layout (``{medium: {source: {"domains": [...],
"parameters": [...]}}}``): first the whole host, then without its leftmost labels, so that
``www.google.co.uk`` finds ``google.co.uk``. A search engine's term is the first of its
parameters found in the referrer's query. A referrer on the page's own host or on one of
``internalDomains`` is ``internal``; one not in the database is ``unknown``.

The database is ours (``data/referers.json``: a few well-known search engines, social sites and
webmail services) unless the config's ``uri`` is a local folder holding ``database``. Remote
databases are never downloaded: a remote ``uri`` falls back to the bundled one, with a
warning. Lookups are dictionary hits on tables built at load, nothing is compiled per event.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import parse_qsl

from snowplow_pipeline.enrich import adapters, transform
from snowplow_pipeline.enrich.enrichments import assets, configs

logger = logging.getLogger(__name__)

BUNDLED_DATABASE = Path(__file__).parent / "data" / "referers.json"
WEB_SCHEMES = frozenset({"http", "https"})


@dataclasses.dataclass(frozen=True, slots=True)
class Referer:
    medium: str
    source: str
    parameters: tuple[str, ...]


class RefererDatabase:
    """Known referers by host, plus those only known on a path of their host."""

    def __init__(self, by_host: dict[str, Referer], by_path: dict[str, list[tuple[str, Referer]]]):
        self.by_host = by_host
        self.by_path = by_path

    def find(self, host: str, path: str) -> Referer | None:
        for candidate in _host_suffixes(host):
            for prefix, referer in self.by_path.get(candidate, ()):
                if path.startswith(prefix):
                    return referer
            known = self.by_host.get(candidate)
            if known is not None:
                return known
        return None


class RefererParser:
    def __init__(self, *, database: RefererDatabase, internal_domains: frozenset[str]) -> None:
        self.database = database
        self.internal_domains = internal_domains

    def enrich(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> None:
        host = fields.get("refr_urlhost")
        if not host or fields.get("refr_urlscheme") not in WEB_SCHEMES:
            return
        host = host.lower()
        if host == fields.get("page_urlhost", "").lower() or host in self.internal_domains:
            fields["refr_medium"] = "internal"
            return
        referer = self.database.find(host, fields.get("refr_urlpath", ""))
        if referer is None:
            fields["refr_medium"] = "unknown"
            return
        fields["refr_medium"] = referer.medium
        fields["refr_source"] = referer.source
        term = _search_term(fields.get("refr_urlquery", ""), referer.parameters)
        if term:
            fields["refr_term"] = transform.clean(term)


def build(config: configs.EnrichmentConfig) -> RefererParser | None:
    parameters = config.parameters
    file = BUNDLED_DATABASE
    if "uri" in parameters:
        uri, name = parameters["uri"], parameters["database"]
        if assets.is_remote(uri):
            logger.warning(
                "The referer database %s at %s is not downloaded; using the bundled database.",
                name,
                uri,
            )
        else:
            found = assets.local_file(config, path="database", uri=uri, database=name)
            if found is None:
                return None
            file = found
    database = read_database(file, config)
    if database is None:
        return None
    internal = frozenset(domain.lower() for domain in parameters["internalDomains"])
    return RefererParser(database=database, internal_domains=internal)


def read_database(file: Path, config: configs.EnrichmentConfig) -> RefererDatabase | None:
    """Read a referer database; problems about its content are recorded on ``database``."""
    try:
        content = json.loads(file.read_bytes())
    except (OSError, ValueError) as exc:
        config.problem("database", f"cannot read the referer database {str(file)!r}: {exc}")
        return None
    by_host: dict[str, Referer] = {}
    by_path: dict[str, list[tuple[str, Referer]]] = {}
    problems = _add_entries(content, by_host=by_host, by_path=by_path)
    for problem in problems:
        config.problem("database", f"{str(file)!r}: {problem}")
    return None if problems else RefererDatabase(by_host, by_path)


def _add_entries(
    content: Any,
    *,
    by_host: dict[str, Referer],
    by_path: dict[str, list[tuple[str, Referer]]],
) -> list[str]:
    if not isinstance(content, dict):
        return ["expected a JSON object of media"]
    problems = []
    for medium, sources in content.items():
        if not isinstance(sources, dict):
            problems.append(f"{medium}: expected an object of sources")
            continue
        for source, entry in sources.items():
            lists = _domains_and_parameters(entry)
            if lists is None:
                problems.append(
                    f"{medium}.{source}: expected domains and optional parameters, "
                    "both lists of strings"
                )
                continue
            domains, parameters = lists
            referer = Referer(medium=medium, source=source, parameters=tuple(parameters))
            for domain in domains:
                host, slash, path = domain.lower().partition("/")
                if slash:
                    by_path.setdefault(host, []).append(("/" + path, referer))
                else:
                    by_host.setdefault(host, referer)
    return problems


def _domains_and_parameters(entry: Any) -> tuple[list[str], list[str]] | None:
    if not isinstance(entry, dict):
        return None
    domains, parameters = entry.get("domains"), entry.get("parameters", [])
    if _is_strings(domains) and _is_strings(parameters):
        return domains, parameters
    return None


def _is_strings(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _host_suffixes(host: str) -> list[str]:
    """``a.b.example.com`` → itself, ``b.example.com``, ``example.com`` (never a bare TLD)."""
    labels = host.split(".")
    return [".".join(labels[start:]) for start in range(max(len(labels) - 1, 1))]


def _search_term(query: str, parameters: tuple[str, ...]) -> str | None:
    if not query or not parameters:
        return None
    values = dict(reversed(parse_qsl(query, keep_blank_values=True)))
    for name in parameters:
        if values.get(name):
            return values[name]
    return None
