"""Resolver configs: reading a standard Snowplow Iglu resolver config into plain values.

The accepted document is the self-describing JSON that every Snowplow component takes,
``iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-0`` to ``1-0-3``, so a user's
existing file works unchanged. It is checked by hand rather than with its JSON Schema or a
pydantic model because users need every problem at once, each with the JSON path of the field,
what was found and what was expected (``data.repositories[1].priority: got "x", expected a
number``). Unknown fields are ignored, as in the upstream resolver.

This module is pure: it neither reads files nor builds registries.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from snowplow_pipeline.iglu.schemakeys import SchemaCriterion, SchemaKey, SchemaKeyError

CONFIG_CRITERION = SchemaCriterion.parse(
    "iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-*"
)
LAST_ADDITION = 3
_EXPECTED_SCHEMA = f"{CONFIG_CRITERION.uri.replace('1-0-*', '1-0-0')} to 1-0-3"
_SHOWN_CHARS = 100


class ResolverConfigError(ValueError):
    """A resolver config has problems; ``problems`` lists each with its JSON path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid Iglu resolver config:\n  " + "\n  ".join(problems))


@dataclasses.dataclass(frozen=True, slots=True)
class HttpConnection:
    uri: str
    apikey: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class EmbeddedConnection:
    path: Path


@dataclasses.dataclass(frozen=True, slots=True)
class RepositoryConfig:
    name: str
    priority: float
    vendor_prefixes: tuple[str, ...]
    connection: HttpConnection | EmbeddedConnection


@dataclasses.dataclass(frozen=True, slots=True)
class ResolverConfig:
    cache_size: int
    cache_ttl_seconds: float | None
    repositories: tuple[RepositoryConfig, ...]


_MISSING = object()


class _Reader:
    """Reads the parts of a config, collecting every problem instead of stopping at the first."""

    def __init__(self, base_dir: Path | None) -> None:
        self.base_dir = base_dir
        self.problems: list[str] = []

    def problem(self, path: str, value: Any, expected: str) -> None:
        got = "missing" if value is _MISSING else f"got {_show(value)}"
        self.problems.append(f"{path}: {got}, expected {expected}")

    def schema(self, uri: Any) -> None:
        try:
            key = SchemaKey.parse(uri)
        except SchemaKeyError:
            key = None
        if key is None or not CONFIG_CRITERION.matches(key) or key.addition > LAST_ADDITION:
            self.problem("schema", uri, _EXPECTED_SCHEMA)

    def cache_size(self, value: Any) -> int:
        if not _is_number(value) or value < 0:
            self.problem("data.cacheSize", value, "a number of schemas, 0 or more")
            return 0
        return int(value)

    def cache_ttl(self, value: Any) -> float | None:
        if value is None:
            return None
        if not _is_number(value) or value <= 0:
            self.problem("data.cacheTtl", value, "a number of seconds above 0, or null")
            return None
        return float(value)

    def repositories(self, value: Any) -> tuple[RepositoryConfig, ...]:
        if not isinstance(value, list):
            self.problem("data.repositories", value, "an array of repositories")
            return ()
        read = (self.repository(item, f"data.repositories[{i}]") for i, item in enumerate(value))
        return tuple(repository for repository in read if repository is not None)

    def repository(self, item: Any, path: str) -> RepositoryConfig | None:
        if not isinstance(item, dict):
            self.problem(path, item, "an object with name, priority, vendorPrefixes, connection")
            return None
        count_before = len(self.problems)

        name = item.get("name", _MISSING)
        if not isinstance(name, str) or not name.strip():
            self.problem(f"{path}.name", name, "a non-empty string")
        priority = item.get("priority", _MISSING)
        if not _is_number(priority):
            self.problem(f"{path}.priority", priority, "a number")
        prefixes = self.prefixes(item.get("vendorPrefixes", _MISSING), f"{path}.vendorPrefixes")
        connection = self.connection(item.get("connection", _MISSING), f"{path}.connection")

        if len(self.problems) > count_before or connection is None:
            return None
        return RepositoryConfig(
            name=name, priority=float(priority), vendor_prefixes=prefixes, connection=connection
        )

    def prefixes(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.problem(path, value, "an array of vendor prefixes (strings)")
            return ()
        for index, prefix in enumerate(value):
            if not isinstance(prefix, str):
                self.problem(f"{path}[{index}]", prefix, "a string")
        return tuple(prefix for prefix in value if isinstance(prefix, str))

    def connection(self, value: Any, path: str) -> HttpConnection | EmbeddedConnection | None:
        kinds = [kind for kind in ("http", "embedded") if isinstance(value, dict) and kind in value]
        if len(kinds) != 1:
            self.problem(path, value, 'an object with exactly one of "http" or "embedded"')
            return None
        if kinds == ["http"]:
            return self.http(value["http"], f"{path}.http")
        return self.embedded(value["embedded"], f"{path}.embedded")

    def http(self, value: Any, path: str) -> HttpConnection | None:
        if not isinstance(value, dict):
            self.problem(path, value, "an object with uri and optional apikey")
            return None
        uri = value.get("uri", _MISSING)
        apikey = value.get("apikey")
        count_before = len(self.problems)
        if not _is_http_url(uri):
            self.problem(f"{path}.uri", uri, "an http:// or https:// URL")
        if apikey is not None and not isinstance(apikey, str):
            self.problem(f"{path}.apikey", apikey, "a string or null")
        if len(self.problems) > count_before:
            return None
        return HttpConnection(uri=uri, apikey=apikey or None)

    def embedded(self, value: Any, path: str) -> EmbeddedConnection | None:
        if not isinstance(value, dict):
            self.problem(path, value, "an object with path")
            return None
        folder = value.get("path", _MISSING)
        if not isinstance(folder, str) or not folder:
            self.problem(f"{path}.path", folder, "a folder path (string)")
            return None
        # Relative folders are relative to the config file, as a user reading it expects.
        anchored = Path(folder) if self.base_dir is None else self.base_dir / folder
        return EmbeddedConnection(path=anchored)


def parse(config: Any, *, base_dir: Path | None = None) -> ResolverConfig:
    """Read a resolver config (already decoded from JSON).

    Relative embedded paths are taken relative to ``base_dir`` (the config file's folder), or
    the working directory. Raises ``ResolverConfigError`` listing every problem.
    """
    reader = _Reader(base_dir)
    if not isinstance(config, dict):
        reader.problem("config", config, "a JSON object with schema and data")
        raise ResolverConfigError(reader.problems)

    reader.schema(config.get("schema", _MISSING))
    data = config.get("data", _MISSING)
    if not isinstance(data, dict):
        reader.problem("data", data, "an object")
        raise ResolverConfigError(reader.problems)

    cache_size = reader.cache_size(data.get("cacheSize", _MISSING))
    cache_ttl = reader.cache_ttl(data.get("cacheTtl"))
    repositories = reader.repositories(data.get("repositories", _MISSING))
    if reader.problems:
        raise ResolverConfigError(reader.problems)
    return ResolverConfig(
        cache_size=cache_size, cache_ttl_seconds=cache_ttl, repositories=repositories
    )


def parse_text(text: str | bytes, *, source: str, base_dir: Path | None = None) -> ResolverConfig:
    """Decode and read a resolver config; ``source`` names it in the JSON error message."""
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ResolverConfigError([f"{source}: not valid JSON ({exc})"]) from exc
    return parse(config, base_dir=base_dir)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"
