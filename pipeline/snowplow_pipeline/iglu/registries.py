"""Iglu registries: the places a schema can be fetched from (this module does the I/O).

Two kinds exist, as in a Snowplow resolver config:

* ``HttpRegistry``: the static HTTP layout ``{uri}/schemas/{vendor}/{name}/{format}/{version}``.
  Iglu Central (``http://iglucentral.com``), a static registry (plain files behind any web
  server) and Iglu Server (whose uri ends in ``/api``) all answer it. An API key, when set, goes
  in the ``apikey`` request header.
* ``EmbeddedRegistry``: the same layout in a local folder. Folders written by users may hold
  a ``schemas/`` subfolder (the Iglu convention) or the vendor folders directly; both work.

A registry answers one lookup at a time and knows nothing about caching, retries or order:
that is the resolver's job. Its answer is the schema (a dict), ``None`` for "not found", or a
``RegistryError`` that says whether trying again later may help (``transient``). No aiohttp
or OS exception leaves this module.
"""

from __future__ import annotations

import abc
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp

from snowplow_pipeline.iglu.schemakeys import SchemaKey

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 1.0
TOTAL_TIMEOUT_SECONDS = 4.0
_SHOWN_BODY_CHARS = 200


class RegistryError(Exception):
    """A registry could not say whether it holds a schema.

    ``kind`` is the name used in lookup histories: ``RepoFailure`` when the registry itself
    misbehaved (unreachable, timed out, answered 5xx or garbage), ``ClientFailure`` when the
    request could not be made or was refused as ours (bad API key, unreadable local file).
    ``transient`` errors may go away by themselves; the resolver retries those.
    """

    def __init__(self, message: str, *, kind: str = "RepoFailure", transient: bool = True):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.transient = transient


class Registry(abc.ABC):
    """One Iglu registry as configured in a resolver config."""

    def __init__(self, *, name: str, priority: float, vendor_prefixes: tuple[str, ...] = ()):
        self.name = name
        self.priority = priority
        self.vendor_prefixes = vendor_prefixes

    @property
    @abc.abstractmethod
    def is_embedded(self) -> bool:
        """Whether the registry is local (consulted before HTTP registries of equal rank)."""

    @abc.abstractmethod
    async def lookup(self, key: SchemaKey) -> dict[str, Any] | None:
        """Return the schema for ``key``, ``None`` if the registry does not hold it.

        Raises ``RegistryError`` when the registry cannot tell.
        """

    async def close(self) -> None:  # noqa: B027 - most registries hold nothing to release
        """Release connections. Lookups after closing are not supported."""

    def is_preferred_for(self, key: SchemaKey) -> bool:
        return any(key.vendor.startswith(prefix) for prefix in self.vendor_prefixes)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} priority={self.priority}>"


class EmbeddedRegistry(Registry):
    """A registry in a local folder, in Iglu layout, files without extension.

    Files are read synchronously: they are small, local, and read once per cache period, so a
    thread hop would cost more than it saves.
    """

    def __init__(
        self,
        *,
        name: str,
        path: Path,
        priority: float = 0,
        vendor_prefixes: tuple[str, ...] = (),
    ):
        super().__init__(name=name, priority=priority, vendor_prefixes=vendor_prefixes)
        self.path = Path(path)

    @property
    def is_embedded(self) -> bool:
        return True

    def find_file(self, key: SchemaKey) -> Path | None:
        for root in (self.path / "schemas", self.path):
            candidate = root / key.vendor / key.name / key.format / key.version
            try:
                if candidate.is_file():
                    return candidate
            except OSError:  # e.g. a name too long for the file system: not stored here
                return None
        return None

    async def lookup(self, key: SchemaKey) -> dict[str, Any] | None:
        file = self.find_file(key)
        if file is None:
            return None
        try:
            schema = json.loads(file.read_bytes())
        except OSError as exc:
            raise RegistryError(
                f"cannot read {file}: {exc.strerror or exc}", kind="ClientFailure"
            ) from exc
        except ValueError as exc:
            raise RegistryError(
                f"{file} is not valid JSON: {exc}", kind="ClientFailure", transient=False
            ) from exc
        return _require_object(schema, where=str(file))


class HttpRegistry(Registry):
    """A registry served over HTTP in the static layout (Iglu Central, static, Iglu Server).

    The aiohttp session is made on first use, inside the running event loop, and shared by all
    lookups of this registry.
    """

    def __init__(
        self,
        *,
        name: str,
        uri: str,
        priority: float = 0,
        vendor_prefixes: tuple[str, ...] = (),
        apikey: str | None = None,
        connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS,
        total_timeout_seconds: float = TOTAL_TIMEOUT_SECONDS,
    ):
        super().__init__(name=name, priority=priority, vendor_prefixes=vendor_prefixes)
        self.uri = uri.rstrip("/")
        self.apikey = apikey
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout_seconds, sock_connect=connect_timeout_seconds
        )
        self._session: aiohttp.ClientSession | None = None

    @property
    def is_embedded(self) -> bool:
        return False

    def url_for(self, key: SchemaKey) -> str:
        return f"{self.uri}/schemas/{key.path}"

    async def lookup(self, key: SchemaKey) -> dict[str, Any] | None:
        url = self.url_for(key)
        headers = {"apikey": self.apikey} if self.apikey else {}
        try:
            async with self._get_session().get(url, headers=headers) as response:
                if response.status == 404:
                    return None
                body = await response.read()
        except TimeoutError as exc:
            raise RegistryError(f"GET {url} timed out") from exc
        except aiohttp.ClientError as exc:
            raise RegistryError(f"GET {url} failed: {_describe(exc)}") from exc
        return _parse_answer(url=url, status=response.status, body=body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session


def _parse_answer(*, url: str, status: int, body: bytes) -> dict[str, Any]:
    """Turn a non-404 answer into a schema, or the RegistryError that describes it."""
    if status in (401, 403):
        raise RegistryError(
            f"GET {url} was refused with HTTP {status}; check the registry's apikey",
            kind="ClientFailure",
            transient=False,
        )
    if not 200 <= status < 300:
        raise RegistryError(f"GET {url} answered HTTP {status}: {_shorten_body(body)}")
    try:
        schema = json.loads(body)
    except ValueError as exc:
        raise RegistryError(
            f"GET {url} answered HTTP {status} with invalid JSON: {_shorten_body(body)}"
        ) from exc
    return _require_object(schema, where=f"GET {url}")


def _require_object(schema: Any, *, where: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise RegistryError(
            f"{where}: got JSON {type(schema).__name__}, expected a JSON Schema object",
            kind="ClientFailure",
            transient=False,
        )
    return schema


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _shorten_body(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return "(empty body)"
    return text if len(text) <= _SHOWN_BODY_CHARS else text[:_SHOWN_BODY_CHARS] + "…"
