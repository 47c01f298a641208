"""PII pseudonymisation (``pii_enrichment_config``): chosen values replaced by salted hashes.

``pojo`` rules name atomic fields; ``json`` rules name the unstruct event, the entities sent
by the tracker (``contexts``) or the entities added by enrichments (``derived_contexts``),
a schema criterion, and a JSONPath into the data of the matching self-describing JSON. Each
chosen string value becomes the lowercase hex digest of ``value + salt`` under the configured
function (MD5, SHA-1, SHA-256, SHA-384, SHA-512; MD2 is not offered by Python's hashlib).
Absent or null values are left alone; a path that reaches an object, an array, a number or a
boolean is an enrichment failure naming the path, because hashing it would change its type.

It runs last, after every other enrichment, so that it also covers what they added. Entities
are never changed in place (the UA parser shares cached entities between events): changed
ones are copied. With ``anonymousOnly`` (2-0-1) only events sent with an ``SP-Anonymous``
header are pseudonymised. ``emitEvent`` is accepted and ignored: upstream removed the PII
stream in Enrich 6.0 and this Mini has none.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from snowplow_pipeline.enrich import adapters, selfdescribing
from snowplow_pipeline.enrich.enrichments import configs, jsonpaths
from snowplow_pipeline.iglu import schemakeys

HASH_FUNCTIONS: dict[str, Callable[[bytes], Any]] = {
    "MD5": hashlib.md5,
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}
JSON_FIELDS = ("unstruct_event", "contexts", "derived_contexts")


@dataclasses.dataclass(frozen=True, slots=True)
class JsonRule:
    criterion: schemakeys.SchemaCriterion
    path: str
    steps: tuple[jsonpaths.Step, ...]


class PiiPseudonymisation:
    def __init__(
        self,
        *,
        identity: configs.Identity,
        hasher: Callable[[str], str],
        atomic_fields: tuple[str, ...],
        json_rules: dict[str, list[JsonRule]],
        anonymous_only: bool,
    ) -> None:
        self.identity = identity
        self.hasher = hasher
        self.atomic_fields = atomic_fields
        self.json_rules = json_rules
        self.anonymous_only = anonymous_only

    def enrich(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> None:
        if self.anonymous_only and not _is_anonymous(event):
            return
        for name in self.atomic_fields:
            if fields.get(name):
                fields[name] = self.hasher(fields[name])
        if self.json_rules.get("unstruct_event") and fields.get("unstruct_event"):
            self._pseudonymise_unstruct(fields)
        if self.json_rules.get("contexts") and fields.get("contexts"):
            self._pseudonymise_contexts(fields)
        if self.json_rules.get("derived_contexts"):
            for index, entity in enumerate(derived):
                derived[index] = self._pseudonymise("derived_contexts", entity)

    def _pseudonymise_unstruct(self, fields: dict[str, str]) -> None:
        inner = json.loads(fields["unstruct_event"])["data"]
        changed = self._pseudonymise("unstruct_event", inner)
        if changed is not inner:
            fields["unstruct_event"] = selfdescribing.unstruct_field(changed)

    def _pseudonymise_contexts(self, fields: dict[str, str]) -> None:
        entities = json.loads(fields["contexts"])["data"]
        changed = [self._pseudonymise("contexts", entity) for entity in entities]
        if any(new is not old for new, old in zip(changed, entities, strict=True)):
            fields["contexts"] = selfdescribing.contexts_field(changed)

    def _pseudonymise(self, field: str, entity: dict[str, Any]) -> dict[str, Any]:
        """The entity with its chosen values hashed: a copy if anything changed, else itself."""
        schema = entity["schema"]
        rules = [rule for rule in self.json_rules[field] if _matches(rule.criterion, schema)]
        if not rules:
            return entity
        hash_leaf = functools.partial(self._hash_leaf, label=f"{field}: {schema}")
        for rule in rules:
            data = jsonpaths.replace(entity["data"], rule.steps, hash_leaf)
            if data is not entity["data"]:
                entity = {**entity, "data": data}
        return entity

    def _hash_leaf(self, value: Any, where: str, *, label: str) -> Any:
        if value is None:
            return value
        if not isinstance(value, str):
            raise self.identity.failure(
                f"{label}: {where}: got {_json_type(value)}, expected a string to pseudonymise"
            )
        return self.hasher(value)


def build(config: configs.EnrichmentConfig) -> PiiPseudonymisation | None:
    strategy = config.parameters["strategy"]["pseudonymize"]
    function, salt = HASH_FUNCTIONS[strategy["hashFunction"]], strategy["salt"]
    atomic_fields: list[str] = []
    json_rules: dict[str, list[JsonRule]] = {}
    for index, rule in enumerate(config.parameters["pii"]):
        if "pojo" in rule:
            atomic_fields.append(rule["pojo"]["field"])
            continue
        parsed = _json_rule(config, rule["json"], where=f"pii[{index}].json")
        if parsed is not None:
            json_rules.setdefault(rule["json"]["field"], []).append(parsed)
    if config.problems:
        return None
    return PiiPseudonymisation(
        identity=config.identity,
        hasher=lambda value: str(function((value + salt).encode("utf-8")).hexdigest()),
        atomic_fields=tuple(dict.fromkeys(atomic_fields)),
        json_rules=json_rules,
        anonymous_only=bool(config.data.get("anonymousOnly", False)),
    )


def _json_rule(
    config: configs.EnrichmentConfig, rule: dict[str, Any], *, where: str
) -> JsonRule | None:
    try:
        criterion = schemakeys.SchemaCriterion.parse(rule["schemaCriterion"])
    except schemakeys.SchemaKeyError as exc:
        config.problem(f"{where}.schemaCriterion", str(exc))
        criterion = None
    try:
        steps = jsonpaths.parse(rule["jsonPath"])
    except jsonpaths.JsonPathError as exc:
        config.problem(f"{where}.jsonPath", str(exc))
        return None
    if criterion is None:
        return None
    return JsonRule(criterion=criterion, path=rule["jsonPath"], steps=steps)


@functools.lru_cache(maxsize=1024)
def _matches(criterion: schemakeys.SchemaCriterion, schema_uri: str) -> bool:
    try:
        return criterion.matches(schemakeys.SchemaKey.parse(schema_uri))
    except schemakeys.SchemaKeyError:
        return False


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a boolean" if isinstance(value, bool) else "a number"


def _is_anonymous(event: adapters.RawEvent) -> bool:
    return any(
        header.partition(":")[0].strip().lower() == "sp-anonymous"
        for header in event.payload.headers
    )
