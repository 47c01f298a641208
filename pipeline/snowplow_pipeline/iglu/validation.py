"""Validation of data against Iglu schemas (pure: no I/O, no network).

Iglu schemas are JSON Schema draft 4 with a ``self`` block and a ``$schema`` that points at
Iglu's self-describing meta-schema. The draft 4 validator is chosen explicitly, so that
``$schema`` is never looked up, and ``$ref`` to anything outside the schema is reported as a
schema problem instead of being fetched.

``validate`` returns data reports shaped like Snowplow's ``ValidatorReport``
(``{"message", "path", "keyword", "targets"}``), each message saying where, what was received
(shortened, never the whole payload) and what was expected. ``targets`` holds what the check
was about: the expected types, the allowed values, the missing or unexpected property names,
or the limit. A schema that is not valid JSON Schema raises ``InvalidSchemaError`` with its
issues, which is a different bad row from invalid data.

Compiled validators are cached per schema key; the schema object itself is checked with
``is`` first, as the resolver hands out the same dict until its cache entry is refreshed.

Speed: most events are valid, and jsonschema is slow at saying so (tens of microseconds per
entity). Each schema is therefore also compiled with fastjsonschema, which answers "valid"
some thirty times faster; only when it says "invalid" does jsonschema run, to produce the
reports, and its verdict is the one returned. The fast path is used only for schemas without
``$ref`` (fastjsonschema would fetch remote references) and with the same format checks.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import fastjsonschema
import jsonschema
import referencing.exceptions
from jsonschema import Draft4Validator

from snowplow_pipeline.iglu import formats
from snowplow_pipeline.iglu.schemakeys import SchemaKey, SchemaKeyError

_FORMAT_CHECKER = formats.format_checker()
_META_VALIDATOR = Draft4Validator(Draft4Validator.META_SCHEMA, format_checker=_FORMAT_CHECKER)
_CACHED_VALIDATORS = 1024
_SHOWN_CHARS = 40
_SHOWN_VALUES = 10
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class InvalidSchemaError(ValueError):
    """The schema itself is not usable; ``issues`` are ``{"path", "message"}`` entries."""

    def __init__(self, key: SchemaKey, issues: list[dict[str, str]]):
        self.key = key
        self.issues = issues
        first = issues[0]
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        super().__init__(f"schema {key.uri} is invalid: {first['path']}: {first['message']}{more}")

    def to_json(self) -> dict[str, Any]:
        """The Iglu client error as it appears in a bad row's ``messages[].error``."""
        return {"error": "ValidationError", "schemaIssues": self.issues}


@dataclasses.dataclass(slots=True)
class _Compiled:
    schema: dict[str, Any]
    validator: Draft4Validator | None
    issues: list[dict[str, str]]
    is_valid_fast: Callable[[Any], Any] | None = None


_compiled: collections.OrderedDict[SchemaKey, _Compiled] = collections.OrderedDict()


def validate(key: SchemaKey, schema: dict[str, Any], instance: Any) -> list[dict[str, Any]]:
    """Validate ``instance`` against ``schema`` (the schema for ``key``).

    Returns the data reports, sorted by path; an empty list means valid. Raises
    ``InvalidSchemaError`` if the schema is not a valid Iglu JSON Schema.
    """
    compiled = _compile(key, schema)
    if compiled.validator is None:
        raise InvalidSchemaError(key, compiled.issues)
    if compiled.is_valid_fast is not None:
        try:
            compiled.is_valid_fast(instance)
            return []
        except Exception:  # any doubt is settled by jsonschema below
            pass
    try:
        errors = list(compiled.validator.iter_errors(instance))
    except (re.error, referencing.exceptions.Unresolvable) as exc:
        raise InvalidSchemaError(key, [{"path": "$", "message": _describe_failure(exc)}]) from exc
    return sorted(_reports(errors), key=lambda report: report["path"])


def check_schema(key: SchemaKey, schema: Any) -> list[dict[str, str]]:
    """The issues that make ``schema`` unusable as the Iglu schema for ``key`` (empty if none).

    Checks the draft 4 meta-schema (with regex patterns compiled) and that ``self`` names
    ``key``, which catches a schema file copied to a new version without updating it.
    """
    if not isinstance(schema, dict):
        return [{"path": "$", "message": f"got {_describe(schema)}, expected a JSON object"}]
    issues = [
        {"path": _json_path(error.absolute_path), "message": _meta_message(error)}
        for error in _META_VALIDATOR.iter_errors(schema)
    ]
    return issues + _self_issues(key, schema.get("self"))


def data_reports_json(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Data reports as the Iglu client error in a bad row's ``messages[].error``."""
    return {"error": "ValidationError", "dataReports": reports}


def _compile(key: SchemaKey, schema: dict[str, Any]) -> _Compiled:
    cached = _compiled.get(key)
    if cached is not None and (cached.schema is schema or cached.schema == schema):
        cached.schema = schema
        return cached
    issues = check_schema(key, schema)
    validator = None if issues else Draft4Validator(schema, format_checker=_FORMAT_CHECKER)
    fast = None if issues else _compile_fast(schema)
    compiled = _Compiled(schema=schema, validator=validator, issues=issues, is_valid_fast=fast)

    _compiled[key] = compiled
    _compiled.move_to_end(key)
    while len(_compiled) > _CACHED_VALIDATORS:
        _compiled.popitem(last=False)
    return compiled


def _compile_fast(schema: dict[str, Any]) -> Callable[[Any], Any] | None:
    """A fastjsonschema validator with draft 4 semantics and our format checks, if possible."""
    if '"$ref"' in json.dumps(schema):
        return None
    definition = {key: value for key, value in schema.items() if key != "self"}
    definition["$schema"] = "http://json-schema.org/draft-04/schema#"
    try:
        return fastjsonschema.compile(definition, formats=_FAST_FORMATS, use_default=False)
    except Exception:  # a schema it cannot compile just takes the slow path
        return None


def _fast_format(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return _FORMAT_CHECKER.conforms(value, name)

    return check


_FAST_FORMATS = {name: _fast_format(name) for name in _FORMAT_CHECKER.checkers}


def _self_issues(key: SchemaKey, block: Any) -> list[dict[str, str]]:
    try:
        described = SchemaKey.from_self(block)
    except SchemaKeyError as exc:
        return [{"path": "$.self", "message": str(exc).removeprefix("self: ")}]
    if described != key:
        message = f"describes {described.uri}, but the schema was looked up as {key.uri}"
        return [{"path": "$.self", "message": message}]
    return []


def _meta_message(error: jsonschema.ValidationError) -> str:
    rule = f"{error.validator}: {_shorten(error.message, 120)}"
    return f"got {_describe(error.instance)}, which the draft 4 meta-schema rejects ({rule})"


def _describe_failure(exc: Exception) -> str:
    if isinstance(exc, re.error):
        return f"a pattern is not a valid regular expression ({exc})"
    return f"a $ref cannot be resolved; remote references are not fetched ({exc})"


def _reports(errors: list[jsonschema.ValidationError]) -> list[dict[str, Any]]:
    reports = []
    seen_required: set[str] = set()
    for error in errors:
        path = _json_path(error.absolute_path)
        if error.validator != "required":
            message, targets = _KEYWORD_MESSAGES.get(str(error.validator), _fallback)(error)
            reports.append(
                _data_report(
                    path=path, keyword=str(error.validator), message=message, targets=targets
                )
            )
        elif path not in seen_required:
            # jsonschema raises one error per missing name; report them from the instance once.
            seen_required.add(path)
            reports.extend(_required_reports(error, path))
    return reports


def _data_report(*, path: str, keyword: str, message: str, targets: list[str]) -> dict[str, Any]:
    return {"message": f"{path}: {message}", "path": path, "keyword": keyword, "targets": targets}


def _required_reports(error: jsonschema.ValidationError, path: str) -> list[dict[str, Any]]:
    present = error.instance if isinstance(error.instance, dict) else {}
    return [
        _data_report(
            path=path,
            keyword="required",
            message=f"missing required property {_show(name)}",
            targets=[name],
        )
        for name in error.validator_value
        if name not in present
    ]


# Each function below turns one jsonschema error into (message, targets).
_Described = tuple[str, list[str]]


def _type_message(error: jsonschema.ValidationError) -> _Described:
    expected = error.validator_value
    types = [expected] if isinstance(expected, str) else list(expected)
    return f"expected {' or '.join(types)}, got {_describe(error.instance)}", types


def _enum_message(error: jsonschema.ValidationError) -> _Described:
    allowed = [value if isinstance(value, str) else _show(value) for value in error.validator_value]
    shown_values = [_show(value) for value in error.validator_value]
    more = ", …" if len(allowed) > _SHOWN_VALUES else ""
    shown = ", ".join(shown_values[:_SHOWN_VALUES]) + more
    return f"expected one of {shown}, got {_describe(error.instance)}", allowed


def _additional_properties_message(error: jsonschema.ValidationError) -> _Described:
    extras = _unexpected_properties(error.schema, error.instance)
    noun = "property" if len(extras) == 1 else "properties"
    names = ", ".join(_show(name) for name in extras)
    return f"got unexpected {noun} {names}, expected only the declared properties", extras


def _unexpected_properties(schema: Any, instance: Any) -> list[str]:
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return []
    declared = schema.get("properties") or {}
    patterns = [re.compile(pattern) for pattern in schema.get("patternProperties") or {}]
    return [
        name
        for name in instance
        if name not in declared and not any(pattern.search(name) for pattern in patterns)
    ]


def _length_message(error: jsonschema.ValidationError) -> _Described:
    bound = "at most" if error.validator == "maxLength" else "at least"
    length = len(error.instance) if isinstance(error.instance, str) else 0
    got = f"{_describe(error.instance)} ({length} characters)"
    return f"expected {bound} {error.validator_value} characters, got {got}", [
        str(error.validator_value)
    ]


def _count_message(error: jsonschema.ValidationError) -> _Described:
    bound = "at most" if error.validator.startswith("max") else "at least"
    noun = "items" if error.validator.endswith("Items") else "properties"
    limit = error.validator_value
    noun = noun.removesuffix("s") if noun == "items" and limit == 1 else noun
    noun = "property" if noun == "properties" and limit == 1 else noun
    return f"expected {bound} {limit} {noun}, got {_describe(error.instance)}", [str(limit)]


def _pattern_message(error: jsonschema.ValidationError) -> _Described:
    pattern = error.validator_value
    return f"expected a string matching {pattern}, got {_describe(error.instance)}", [pattern]


def _format_message(error: jsonschema.ValidationError) -> _Described:
    wanted = error.validator_value
    return f"expected a {wanted} string, got {_describe(error.instance)}", [wanted]


def _bound_message(error: jsonschema.ValidationError) -> _Described:
    is_minimum = error.validator == "minimum"
    exclusive = error.schema.get("exclusiveMinimum" if is_minimum else "exclusiveMaximum")
    operator = (">" if is_minimum else "<") + ("" if exclusive else "=")
    limit = error.validator_value
    return f"expected a number {operator} {limit}, got {_describe(error.instance)}", [str(limit)]


def _multiple_of_message(error: jsonschema.ValidationError) -> _Described:
    factor = error.validator_value
    return f"expected a multiple of {factor}, got {_describe(error.instance)}", [str(factor)]


def _unique_items_message(error: jsonschema.ValidationError) -> _Described:
    return f"expected unique items, got {_describe(error.instance)} with duplicates", []


def _alternatives_message(error: jsonschema.ValidationError) -> _Described:
    count = len(error.validator_value)
    if error.validator == "anyOf":
        wanted = f"a value matching at least one of {count} alternatives (anyOf)"
    elif error.context:
        wanted = f"a value matching exactly one of {count} alternatives (oneOf), matching none"
    else:
        wanted = f"a value matching exactly one of {count} alternatives (oneOf), matching several"
    return f"expected {wanted}, got {_describe(error.instance)}", []


def _not_message(error: jsonschema.ValidationError) -> _Described:
    return f"expected a value the schema forbids with not, got {_describe(error.instance)}", []


def _dependencies_message(error: jsonschema.ValidationError) -> _Described:
    present = error.instance if isinstance(error.instance, dict) else {}
    for name, needed in error.validator_value.items():
        if name in present and isinstance(needed, list):
            missing = [other for other in needed if other not in present]
            if missing:
                names = ", ".join(_show(other) for other in missing)
                return f"property {_show(name)} requires {names}, missing", missing
    return _fallback(error)


def _fallback(error: jsonschema.ValidationError) -> _Described:
    return _shorten(error.message, 200), []


_KEYWORD_MESSAGES = {
    "type": _type_message,
    "enum": _enum_message,
    "additionalProperties": _additional_properties_message,
    "maxLength": _length_message,
    "minLength": _length_message,
    "maxItems": _count_message,
    "minItems": _count_message,
    "maxProperties": _count_message,
    "minProperties": _count_message,
    "pattern": _pattern_message,
    "format": _format_message,
    "minimum": _bound_message,
    "maximum": _bound_message,
    "multipleOf": _multiple_of_message,
    "uniqueItems": _unique_items_message,
    "anyOf": _alternatives_message,
    "oneOf": _alternatives_message,
    "not": _not_message,
    "dependencies": _dependencies_message,
}


def _json_path(parts: Iterable[str | int]) -> str:
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER_RE.match(part):
            path += f".{part}"
        else:
            path += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return path


def _describe(value: Any) -> str:
    """A short description of a received value: its JSON type and, for scalars, the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {_show(value)}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {_show(value)}"
    if isinstance(value, str):
        return f"string {_show(value)}"
    if isinstance(value, list):
        return f"array of {len(value)} item{'' if len(value) == 1 else 's'}"
    return "object"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 2] + "…" + text[-1]
