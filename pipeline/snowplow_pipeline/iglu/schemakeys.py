"""Schema keys and schema criteria: the names of Iglu schemas.

A schema key names exactly one schema, ``iglu:vendor/name/format/model-revision-addition``
(SchemaVer). A schema criterion names a family of them, with ``*`` standing for any revision
or addition (``iglu:com.acme/checkout/jsonschema/1-*-*``), and is what enrich uses to check
that a wrapper or entity has the schema it expects.

Both are pure values: parsing never touches a registry, so keys can be checked at the edge
(while reading an event) and reported as bad input with the offending value.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_FORM = "iglu:vendor/name/format/model-revision-addition"
_CRITERION_FORM = "iglu:vendor/name/format/model-revision-addition, each number possibly *"

# The character sets are Iglu's: vendors may contain dots (reverse domain names), names and
# formats may not. SchemaVer numbers have no leading zeros and the model starts at 1.
# Segments are bounded and a vendor never starts with a dot nor holds "..": keys become file
# paths in local registries, where an unbounded or relative segment would escape or fail.
_VENDOR = r"(?P<vendor>(?!\.)(?![^/]*\.\.)[a-zA-Z0-9_.-]{1,128})"
_NAME_AND_FORMAT = r"(?P<name>[a-zA-Z0-9_-]{1,128})/(?P<format>[a-zA-Z0-9_-]{1,32})"
_NUMBER = r"(?:0|[1-9][0-9]{0,8})"
_KEY_RE = re.compile(
    rf"^iglu:{_VENDOR}/{_NAME_AND_FORMAT}"
    rf"/(?P<version>[1-9][0-9]{{0,8}}-{_NUMBER}-{_NUMBER})$"
)
_CRITERION_RE = re.compile(
    rf"^iglu:{_VENDOR}/{_NAME_AND_FORMAT}"
    rf"/(?P<model>[1-9][0-9]{{0,8}}|\*)-(?P<revision>{_NUMBER}|\*)-(?P<addition>{_NUMBER}|\*)$"
)
_SHOWN_CHARS = 80


class SchemaKeyError(ValueError):
    """A string that should name an Iglu schema (or family of schemas) does not."""


def _shorten(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


@dataclasses.dataclass(frozen=True, slots=True)
class SchemaKey:
    """The full name of one schema, e.g. ``iglu:com.acme/checkout/jsonschema/1-0-2``."""

    vendor: str
    name: str
    format: str
    version: str

    @classmethod
    def parse(cls, uri: str) -> SchemaKey:
        match = _KEY_RE.match(uri) if isinstance(uri, str) else None
        if match is None:
            raise SchemaKeyError(f"got {_shorten(uri)}, expected a schema key {_FORM}")
        return cls(**match.groupdict())

    @classmethod
    def from_self(cls, block: Any) -> SchemaKey:
        """Read the ``self`` block of a schema (``{"vendor", "name", "format", "version"}``)."""
        if not isinstance(block, dict):
            raise SchemaKeyError(f"self: got {_shorten(block)}, expected an object")
        parts = [block.get(field) for field in ("vendor", "name", "format", "version")]
        if not all(isinstance(part, str) for part in parts):
            raise SchemaKeyError(
                f"self: got {_shorten(block)}, expected string vendor, name, format and version"
            )
        return cls.parse("iglu:" + "/".join(str(part) for part in parts))

    @property
    def path(self) -> str:
        """The key as a registry path: ``vendor/name/format/version``."""
        return f"{self.vendor}/{self.name}/{self.format}/{self.version}"

    @property
    def uri(self) -> str:
        return f"iglu:{self.path}"

    @property
    def model(self) -> int:
        return int(self.version.split("-", 1)[0])

    @property
    def revision(self) -> int:
        return int(self.version.split("-")[1])

    @property
    def addition(self) -> int:
        return int(self.version.split("-")[2])

    def __str__(self) -> str:
        return self.uri


@dataclasses.dataclass(frozen=True, slots=True)
class SchemaCriterion:
    """A family of schemas: vendor, name and format exact, SchemaVer numbers exact or any.

    ``None`` in ``model``, ``revision`` or ``addition`` stands for ``*``.
    """

    vendor: str
    name: str
    format: str
    model: int | None
    revision: int | None
    addition: int | None

    @classmethod
    def parse(cls, uri: str) -> SchemaCriterion:
        match = _CRITERION_RE.match(uri) if isinstance(uri, str) else None
        if match is None:
            raise SchemaKeyError(
                f"got {_shorten(uri)}, expected a schema criterion {_CRITERION_FORM}"
            )
        numbers = {
            part: None if match[part] == "*" else int(match[part])
            for part in ("model", "revision", "addition")
        }
        return cls(vendor=match["vendor"], name=match["name"], format=match["format"], **numbers)

    def matches(self, key: SchemaKey) -> bool:
        if (key.vendor, key.name, key.format) != (self.vendor, self.name, self.format):
            return False
        wanted = (self.model, self.revision, self.addition)
        actual = (key.model, key.revision, key.addition)
        return all(want is None or want == have for want, have in zip(wanted, actual, strict=True))

    @property
    def uri(self) -> str:
        numbers = ("*" if n is None else str(n) for n in (self.model, self.revision, self.addition))
        return f"iglu:{self.vendor}/{self.name}/{self.format}/{'-'.join(numbers)}"

    def __str__(self) -> str:
        return self.uri
