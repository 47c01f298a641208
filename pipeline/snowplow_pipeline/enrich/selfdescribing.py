"""The self-describing JSON an event carries: its unstruct event and its entities.

``ue_pr``/``ue_px`` must hold an ``unstruct_event`` wrapper and ``co``/``cx`` a ``contexts``
wrapper; both wrappers and every inner self-describing JSON are resolved through the Iglu
resolver and validated. Problems come back as ``schema_violations`` messages (``NotJson``,
``NotIglu``, ``CriterionMismatch``, or an Iglu ``ValidationError``/``ResolutionError``), all of
them at once, never as exceptions.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Any

from snowplow_pipeline.iglu import resolving, schemakeys, validation

UNSTRUCT_CRITERION = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-*-*"
CONTEXTS_CRITERION = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-*-*"
UNSTRUCT_OUTPUT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
CONTEXTS_OUTPUT = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1"


@dataclasses.dataclass(slots=True)
class Extracted:
    """What was read from one event; ``messages`` empty means everything validated."""

    unstruct: dict[str, Any] | None = None
    entities: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    messages: list[dict[str, Any]] = dataclasses.field(default_factory=list)


class JsonError(ValueError):
    """Untrusted text that is not JSON we accept; the message says why."""


_MAX_JSON_DEPTH_ERROR = "nested too deeply (Python's recursion limit)"


def load_json(text: str) -> Any:
    """Parse untrusted JSON: no NaN or Infinity, no number out of range, no lone surrogate.

    Such values parse in Python but cannot be written back as JSON or UTF-8, so an event
    carrying them would break every reader downstream; they make it a bad row instead.
    """
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise JsonError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise JsonError(f"invalid JSON: {_MAX_JSON_DEPTH_ERROR}") from exc
    if "\\u" in text and _has_lone_surrogate(value):
        raise JsonError("invalid JSON: a string holds an unpaired UTF-16 surrogate")
    return value


def _reject_constant(name: str) -> Any:
    raise JsonError(f"invalid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise JsonError(f"invalid JSON: {text[:40]} is too large for a number")
    return number


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def decode_parameter(parameters: dict[str, str], *, plain: str, encoded: str) -> str | None:
    """The JSON text of a plain or base64url parameter (padding optional); plain wins.

    Raises ``ValueError`` naming the parameter when the base64 or its UTF-8 is broken.
    """
    if parameters.get(plain):
        return parameters[plain]
    value = parameters.get(encoded)
    if not value:
        return None
    standard = value.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"{encoded}: not base64url-encoded UTF-8 JSON ({exc})") from exc


async def extract(parameters: dict[str, str], resolver: resolving.Resolver) -> Extracted:
    """Read, resolve and validate the unstruct event and the entities of one event."""
    result = Extracted()
    unstruct = await _read_wrapper(
        parameters, resolver, result, plain="ue_pr", encoded="ue_px", criterion=UNSTRUCT_CRITERION
    )
    if unstruct is not None:
        inner = unstruct.get("data")
        if await validate_sdj(inner, resolver, result.messages):
            result.unstruct = inner
    contexts = await _read_wrapper(
        parameters, resolver, result, plain="co", encoded="cx", criterion=CONTEXTS_CRITERION
    )
    for entity in (contexts or {}).get("data") or []:
        if await validate_sdj(entity, resolver, result.messages):
            result.entities.append(entity)
    return result


async def validate_sdj(
    sdj: Any, resolver: resolving.Resolver, messages: list[dict[str, Any]]
) -> bool:
    """Resolve the schema of one self-describing JSON and validate it; add messages if not."""
    key = _schema_key(sdj, messages)
    if key is None:
        return False
    if "data" not in sdj:
        messages.append(not_iglu(sdj, "InvalidData", "a self-describing JSON needs a data field"))
        return False
    try:
        schema = await resolver.lookup(key)
    except resolving.ResolutionError as exc:
        messages.append(
            {
                "schemaKey": key.uri,
                "error": {"error": "ResolutionError", "lookupHistory": exc.lookup_history},
            }
        )
        return False
    try:
        reports = validation.validate(key, schema, sdj["data"])
    except validation.InvalidSchemaError as exc:
        # The user's schema itself is broken: the event cannot be judged, so it is bad.
        messages.append({"schemaKey": key.uri, "error": exc.to_json()})
        return False
    if reports:
        messages.append(
            {"schemaKey": key.uri, "error": {"error": "ValidationError", "dataReports": reports}}
        )
        return False
    return True


def not_iglu(json_value: Any, error: str, message: str) -> dict[str, Any]:
    return {"json": json_value, "error": {"error": error, "message": message}}


def unstruct_field(unstruct: dict[str, Any]) -> str:
    return _dumps({"schema": UNSTRUCT_OUTPUT, "data": unstruct})


def contexts_field(entities: list[dict[str, Any]]) -> str:
    return _dumps({"schema": CONTEXTS_OUTPUT, "data": entities})


async def _read_wrapper(
    parameters: dict[str, str],
    resolver: resolving.Resolver,
    result: Extracted,
    *,
    plain: str,
    encoded: str,
    criterion: str,
) -> dict[str, Any] | None:
    """The validated wrapper object in a parameter, or None (with messages) if unusable."""
    field = plain if parameters.get(plain) else encoded
    try:
        text = decode_parameter(parameters, plain=plain, encoded=encoded)
    except ValueError as exc:
        result.messages.append(
            {"field": field, "value": _shorten(parameters[encoded]), "error": str(exc)}
        )
        return None
    if text is None:
        return None
    try:
        wrapper = load_json(text)
    except JsonError as exc:
        result.messages.append({"field": field, "value": _shorten(text), "error": str(exc)})
        return None
    key = _schema_key(wrapper, result.messages)
    if key is None:
        return None
    if not schemakeys.SchemaCriterion.parse(criterion).matches(key):
        result.messages.append({"schemaKey": key.uri, "schemaCriterion": criterion})
        return None
    if not await validate_sdj(wrapper, resolver, result.messages):
        return None
    return wrapper


def _schema_key(sdj: Any, messages: list[dict[str, Any]]) -> schemakeys.SchemaKey | None:
    if not isinstance(sdj, dict) or not isinstance(sdj.get("schema"), str):
        messages.append(
            not_iglu(
                sdj,
                "InvalidData",
                "expected a self-describing JSON: an object with a string "
                "schema field and a data field",
            )
        )
        return None
    try:
        return schemakeys.SchemaKey.parse(sdj["schema"])
    except schemakeys.SchemaKeyError as exc:
        messages.append(not_iglu(sdj, "InvalidIgluUri", str(exc)))
        return None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _shorten(value: str, limit: int = 200) -> str:
    return value if len(value) <= limit else value[:limit] + "…"
