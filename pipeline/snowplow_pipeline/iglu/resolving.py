"""The Iglu resolver: finds the schema for a schema key across registries, with caching.

Enrich asks it for every self-describing JSON it meets, so a lookup must be cheap when cached
and must never hang the pipeline when a registry is down. The rules:

* Order: the package's own embedded registry first (the pipeline's wrappers and bad rows must
  not depend on the network); then registries whose ``vendorPrefixes`` match the key's vendor;
  embedded before HTTP; then ascending ``priority`` (Snowplow's documented order).
* Cache: an LRU of ``cacheSize`` keys. Both "found" and "not found anywhere" are kept for
  ``cacheTtl`` seconds (forever when null). A result that involved an error is kept only for a
  short, growing backoff, then asked again; its lookup history carries over, so ``attempts``
  counts every try as in Snowplow's ``ResolutionError`` bad rows.
* Retries: a transient registry error is retried up to 3 more times with short delays, all
  within a time budget. A registry that keeps failing is skipped for a growing backoff
  (a circuit breaker), so with no network the first event fails within seconds and the
  following ones, whatever their schema, fail at once instead of waiting again. After the
  backoff one single attempt probes it.
* Concurrent lookups of one key share one task; cancelling a caller does not cancel it.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from snowplow_pipeline.iglu import configs, embedded, registries
from snowplow_pipeline.iglu.configs import ResolverConfigError
from snowplow_pipeline.iglu.schemakeys import SchemaKey

__all__ = ["ResolutionError", "Resolver", "ResolverConfigError", "RetryPolicy"]

logger = logging.getLogger(__name__)

IGLU_CENTRAL_URI = "http://iglucentral.com"
DEFAULT_CACHE_SIZE = 500
DEFAULT_CACHE_TTL_SECONDS = 60.0
_NOT_FOUND = {"error": "NotFound"}
_MAX_ERRORS_PER_REPOSITORY = 5


class ResolutionError(Exception):
    """No registry returned the schema; ``lookup_history`` says what each one answered.

    The history is a list of ``{"repository", "errors", "attempts", "lastAttempt"}`` in the
    shape of the ``lookupHistory`` of a ``schema_violations`` bad row.
    """

    def __init__(self, key: SchemaKey, lookup_history: list[dict[str, Any]]):
        self.key = key
        self.lookup_history = lookup_history
        answers = "; ".join(
            f"{entry['repository']}: {', '.join(error['error'] for error in entry['errors'])}"
            for entry in lookup_history
        )
        super().__init__(f"{key.uri} could not be resolved ({answers})")

    @property
    def is_not_found(self) -> bool:
        """Whether every registry answered "not found" (rather than failing)."""
        return all(e == _NOT_FOUND for entry in self.lookup_history for e in entry["errors"])

    def to_json(self) -> dict[str, Any]:
        """The Iglu client error as it appears in a bad row's ``messages[].error``."""
        return {"error": "ResolutionError", "lookupHistory": self.lookup_history}


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try a failing registry, and how long to leave it alone afterwards."""

    retry_delays_seconds: tuple[float, ...] = (0.1, 0.3, 0.6)
    attempts_budget_seconds: float = 6.0
    backoff_first_seconds: float = 2.0
    backoff_max_seconds: float = 60.0

    def backoff_seconds(self, failures: int) -> float:
        growth = 2.0 ** min(max(failures - 1, 0), 16)
        return min(self.backoff_first_seconds * growth, self.backoff_max_seconds)


@dataclasses.dataclass(slots=True)
class _RepoHistory:
    repository: str
    errors: list[dict[str, str]] = dataclasses.field(default_factory=list)
    attempts: int = 0
    last_attempt: datetime.datetime | None = None

    def record(self, error: dict[str, str], *, attempts: int) -> None:
        if error not in self.errors:
            self.errors = [*self.errors, error][-_MAX_ERRORS_PER_REPOSITORY:]
        if attempts:
            self.attempts += attempts
            self.last_attempt = datetime.datetime.now(datetime.UTC)

    def to_json(self) -> dict[str, Any]:
        last = self.last_attempt or datetime.datetime.now(datetime.UTC)
        return {
            "repository": self.repository,
            "errors": list(self.errors),
            "attempts": self.attempts,
            "lastAttempt": last.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }


@dataclasses.dataclass(slots=True)
class _Answer:
    """What one registry said: a schema, nothing (not found), or an error."""

    schema: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    attempts: int = 1


@dataclasses.dataclass(slots=True)
class _Entry:
    """A cached lookup result: a schema, or the histories of a failed lookup."""

    schema: dict[str, Any] | None
    histories: list[_RepoHistory]
    expires_at: float | None
    failed_rounds: int = 0


@dataclasses.dataclass(slots=True)
class _Health:
    """Whether a registry is failing, and until when it is left alone."""

    failures: int = 0
    retry_after: float = 0.0
    last_error: str = ""


class Resolver:
    """Resolves schema keys to schemas; see the module docstring for order, cache and retries.

    Use one resolver per process; call ``close()`` (or use ``async with``) when done.
    """

    def __init__(
        self,
        configured_registries: Sequence[registries.Registry],
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_ttl_seconds: float | None = DEFAULT_CACHE_TTL_SECONDS,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.registries = [embedded.embedded_registry(), *configured_registries]
        self.cache_size = cache_size
        self.cache_ttl_seconds = cache_ttl_seconds
        self.retry = retry or RetryPolicy()
        self._clock = clock
        self._cache: collections.OrderedDict[SchemaKey, _Entry] = collections.OrderedDict()
        self._inflight: dict[SchemaKey, asyncio.Task[_Entry]] = {}
        self._health = {id(registry): _Health() for registry in self.registries}

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, extra_local_folders: Sequence[Path] = ()
    ) -> Resolver:
        """Build from a decoded resolver config; ``ResolverConfigError`` lists every problem."""
        return cls._from_parsed(configs.parse(config), extra_local_folders=extra_local_folders)

    @classmethod
    def from_file(cls, path: Path, *, extra_local_folders: Sequence[Path] = ()) -> Resolver:
        """Build from a resolver config file; relative embedded paths are relative to it."""
        path = Path(path)
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ResolverConfigError([f"{path}: cannot read ({exc.strerror or exc})"]) from exc
        parsed = configs.parse_text(text, source=str(path), base_dir=path.parent)
        return cls._from_parsed(parsed, extra_local_folders=extra_local_folders)

    @classmethod
    def default(cls, *, extra_local_folders: Sequence[Path] = ()) -> Resolver:
        """Iglu Central (priority 1) behind the embedded registry and any local folders."""
        iglu_central = registries.HttpRegistry(
            name="Iglu Central", uri=IGLU_CENTRAL_URI, priority=1
        )
        folders = _local_folder_registries(extra_local_folders)
        return cls([*folders, iglu_central])

    @classmethod
    def _from_parsed(
        cls, parsed: configs.ResolverConfig, *, extra_local_folders: Sequence[Path]
    ) -> Resolver:
        built = [_build_registry(repository) for repository in parsed.repositories]
        resolver = cls(
            [*_local_folder_registries(extra_local_folders), *built],
            cache_size=parsed.cache_size,
            cache_ttl_seconds=parsed.cache_ttl_seconds,
        )
        logger.info("Iglu resolver configured with registries %s.", resolver.registries)
        return resolver

    def lookup_order(self, key: SchemaKey) -> list[registries.Registry]:
        """The registries in the order they are asked for ``key``."""
        own, *others = self.registries
        ranked = sorted(
            others,
            key=lambda r: (not r.is_preferred_for(key), not r.is_embedded, r.priority),
        )
        return [own, *ranked]

    async def lookup(self, key: SchemaKey) -> dict[str, Any]:
        """Return the schema for ``key`` or raise ``ResolutionError``.

        Never raises anything else for a registry problem; those end up in the history.
        """
        entry = self._cached(key)
        if entry is None:
            entry = await self._resolve_shared(key)
        if entry.schema is not None:
            return entry.schema
        raise ResolutionError(key, [history.to_json() for history in entry.histories])

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        for registry in self.registries:
            await registry.close()

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _cached(self, key: SchemaKey) -> _Entry | None:
        entry = self._cache.get(key)
        if entry is None or (entry.expires_at is not None and entry.expires_at <= self._clock()):
            return None
        self._cache.move_to_end(key)
        return entry

    async def _resolve_shared(self, key: SchemaKey) -> _Entry:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._resolve(key), name=f"iglu lookup {key.uri}")
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # Shielded: a caller that gives up must not cancel the lookup others wait for.
        return await asyncio.shield(task)

    async def _resolve(self, key: SchemaKey) -> _Entry:
        # Carry over the history of an expired failure, so attempts keep counting.
        previous = self._cache.get(key)
        carried = previous.histories if previous and previous.schema is None else []
        histories = {history.repository: history for history in carried}

        has_errors = False
        ordered: list[_RepoHistory] = []
        for registry in self.lookup_order(key):
            history = histories.get(registry.name) or _RepoHistory(registry.name)
            ordered.append(history)
            answer = await self._ask(registry, key)
            if answer.schema is not None:
                return self._store(key, _Entry(answer.schema, [], self._expiry()))
            history.record(answer.error or _NOT_FOUND, attempts=answer.attempts)
            has_errors = has_errors or answer.error is not None

        if not has_errors:
            # Errors of earlier rounds are over: what stands now is "not found" everywhere.
            for history in ordered:
                history.errors = [_NOT_FOUND]
            return self._store(key, _Entry(None, ordered, self._expiry()))
        rounds = previous.failed_rounds + 1 if previous and previous.schema is None else 1
        pause_seconds = self.retry.backoff_seconds(rounds)
        logger.debug("Iglu lookup of %s failed; asking again after %.1f s.", key, pause_seconds)
        entry = _Entry(None, ordered, self._clock() + pause_seconds, failed_rounds=rounds)
        return self._store(key, entry)

    async def _ask(self, registry: registries.Registry, key: SchemaKey) -> _Answer:
        """Ask one registry, retrying transient errors within the time budget.

        A registry already known to be failing gets a single attempt, or none at all while
        its backoff lasts.
        """
        health = self._health[id(registry)]
        if self._clock() < health.retry_after:
            return _Answer(error=_skipped_error(health), attempts=0)
        delays = self.retry.retry_delays_seconds if health.failures == 0 else ()

        attempts = 0
        error: registries.RegistryError | None = None
        try:
            async with asyncio.timeout(self.retry.attempts_budget_seconds):
                for delay in (*delays, None):
                    attempts += 1
                    try:
                        schema = await registry.lookup(key)
                    except registries.RegistryError as exc:
                        error = exc
                        if not exc.transient or delay is None:
                            break
                        await asyncio.sleep(delay)
                    else:
                        health.failures = 0
                        return _Answer(schema=schema, attempts=attempts)
        except TimeoutError:
            budget = self.retry.attempts_budget_seconds
            error = registries.RegistryError(f"{registry.name}: no answer within {budget:g} s")

        assert error is not None  # the loop only ends without returning after an error
        if error.transient:
            self._mark_failing(registry, health, error)
        return _Answer(error={"error": error.kind, "message": error.message}, attempts=attempts)

    def _mark_failing(
        self, registry: registries.Registry, health: _Health, error: registries.RegistryError
    ) -> None:
        if self._clock() < health.retry_after:
            return  # a concurrent lookup has just paused this registry
        health.failures += 1
        health.last_error = error.message
        pause_seconds = self.retry.backoff_seconds(health.failures)
        health.retry_after = self._clock() + pause_seconds
        logger.warning(
            "Iglu registry %s failed %d time(s) in a row (%s); skipping it for %.0f s.",
            registry.name,
            health.failures,
            error.message,
            pause_seconds,
        )

    def _expiry(self) -> float | None:
        if self.cache_ttl_seconds is None:
            return None
        return self._clock() + self.cache_ttl_seconds

    def _store(self, key: SchemaKey, entry: _Entry) -> _Entry:
        if self.cache_size <= 0:
            return entry
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry


def _skipped_error(health: _Health) -> dict[str, str]:
    # Worded without counters or times so that repeated skips stay one entry in the history.
    return {"error": "RepoFailure", "message": f"not asked while failing: {health.last_error}"}


def _build_registry(repository: configs.RepositoryConfig) -> registries.Registry:
    connection = repository.connection
    common: dict[str, Any] = {
        "name": repository.name,
        "priority": repository.priority,
        "vendor_prefixes": repository.vendor_prefixes,
    }
    if isinstance(connection, configs.HttpConnection):
        return registries.HttpRegistry(uri=connection.uri, apikey=connection.apikey, **common)
    if not connection.path.is_dir():
        logger.warning(
            "Iglu registry %s: folder %s does not exist, so it will find no schemas.",
            repository.name,
            connection.path,
        )
    return registries.EmbeddedRegistry(path=connection.path, **common)


def _local_folder_registries(folders: Sequence[Path]) -> list[registries.Registry]:
    missing = [
        f"extra_local_folders[{i}]: got {json.dumps(str(f))}, expected an existing folder"
        for i, f in enumerate(folders)
        if not Path(f).is_dir()
    ]
    if missing:
        raise ResolverConfigError(missing)
    return [
        registries.EmbeddedRegistry(name=f"Local folder {folder}", path=Path(folder), priority=0)
        for folder in folders
    ]
