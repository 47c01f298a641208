"""The SnowplowMini spec as typed values, and the problems that make a spec unusable.

The CRD's structural schema rejects most bad input at ``kubectl apply``; this model repeats its
defaults and bounds because the operator must not trust that the installed CRD matches its own
version, and adds the checks a schema cannot make (the shape of an enrichment config). A test
compares the defaults here with the ones in crds/.

``parse`` reports every problem at once, each naming its field the way a user writes it:
``spec.iglu.registries[1].priority: got -3, expected an integer from 0 to 100``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-_.A-Za-z0-9]{0,61}[A-Za-z0-9])?$"
ENRICHMENT_NAME_PATTERN = r"^[a-z0-9]([-_.a-z0-9]{0,61}[a-z0-9])?$"
SETTING_NAME_PATTERN = r"^[A-Z][A-Z0-9_]*$"
HEAP_PATTERN = r"^[1-9][0-9]*[mg]$"
DURATION_PATTERN = r"^([0-9]+(s|m|h|d))+$"
IGLU_SCHEMA_PATTERN = re.compile(r"^iglu:[a-zA-Z0-9-_.]+/[a-zA-Z0-9-_]+/jsonschema/\d+-\d+-\d+$")

# Collector settings the operator sets itself: the listening address and the NSQ wiring.
RESERVED_COLLECTOR_SETTINGS = ("HOST", "PORT")
RESERVED_COLLECTOR_PREFIXES = ("NSQ__",)


class InvalidSpecError(ValueError):
    """The spec cannot be rendered; ``problems`` lists every problem with its field path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


Quantity = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int) else v),
    StringConstraints(pattern=QUANTITY_PATTERN),
]
Name = Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)]


class ResourceAmounts(_Model):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(_Model):
    """Requests and limits; an unset amount takes the component's default from ``rendering``."""

    requests: ResourceAmounts = ResourceAmounts()
    limits: ResourceAmounts = ResourceAmounts()


class Component(_Model):
    image: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    resources: Resources = Resources()


class Cookie(_Model):
    enabled: bool = True
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)] = "sp"
    domains: Annotated[
        list[Annotated[str, StringConstraints(max_length=253)]], Field(max_length=16)
    ] = []
    fallback_domain: Annotated[str, StringConstraints(max_length=253)] | None = None
    same_site: Literal["None", "Lax", "Strict"] = "None"
    secure: bool = True
    http_only: bool = False
    expiration_days: Annotated[int, Field(ge=1, le=3650)] = 365


class Collector(Component):
    cookie: Cookie = Cookie()
    settings: Annotated[
        dict[
            Annotated[str, StringConstraints(pattern=SETTING_NAME_PATTERN, max_length=128)],
            Annotated[str, StringConstraints(max_length=4096)],
        ],
        Field(max_length=64),
    ] = {}

    @pydantic.field_validator("settings")
    @classmethod
    def _not_reserved(cls, settings: dict[str, str]) -> dict[str, str]:
        taken = [
            name
            for name in settings
            if name in RESERVED_COLLECTOR_SETTINGS or name.startswith(RESERVED_COLLECTOR_PREFIXES)
        ]
        if taken:
            raise ValueError(f"reserved for the operator: {', '.join(sorted(taken))}")
        return settings


class Enrichment(_Model):
    name: Annotated[str, StringConstraints(pattern=ENRICHMENT_NAME_PATTERN)]
    config: dict[str, Any]

    @pydantic.field_validator("config")
    @classmethod
    def _self_describing(cls, config: dict[str, Any]) -> dict[str, Any]:
        schema = config.get("schema")
        if not isinstance(schema, str) or not IGLU_SCHEMA_PATTERN.match(schema):
            raise ValueError(
                "expected a self-describing JSON whose schema is an Iglu URI "
                "(iglu:vendor/name/jsonschema/1-0-0)"
            )
        if not isinstance(config.get("data"), dict):
            raise ValueError("expected a self-describing JSON with a data object")
        return config


class Enrich(Component):
    enrichments: Annotated[list[Enrichment], Field(max_length=32)] = []

    @pydantic.field_validator("enrichments")
    @classmethod
    def _unique_names(cls, enrichments: list[Enrichment]) -> list[Enrichment]:
        names = [enrichment.name for enrichment in enrichments]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate enrichment names: {', '.join(duplicates)}")
        return enrichments


class Sinks(Component):
    pass


class NsqAdmin(_Model):
    enabled: bool = True


class Nsq(Component):
    admin: NsqAdmin = NsqAdmin()


class Storage(_Model):
    persistent: bool = False
    size: Quantity = "5Gi"
    storage_class_name: Name | None = None


class Elasticsearch(Component):
    heap: Annotated[str, StringConstraints(pattern=HEAP_PATTERN)] = "512m"
    storage: Storage = Storage()


class Kibana(Component):
    enabled: bool = True


class SecretKeyRef(_Model):
    name: Name
    key: Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = "apiKey"


class Registry(_Model):
    name: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    uri: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    vendor_prefixes: Annotated[
        list[Annotated[str, StringConstraints(max_length=253)]], Field(max_length=32)
    ] = []
    api_key_secret_ref: SecretKeyRef | None = None


class Iglu(_Model):
    iglu_central: bool = True
    cache_size: Annotated[int, Field(ge=0, le=100_000)] = 500
    registries: Annotated[list[Registry], Field(max_length=16)] = []

    @pydantic.field_validator("registries")
    @classmethod
    def _unique_names(cls, registries: list[Registry]) -> list[Registry]:
        names = [registry.name for registry in registries]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate registry names: {', '.join(duplicates)}")
        return registries


class Source(_Model):
    """Where the code under test comes from; informational, mirrored into labels."""

    repository: Annotated[str, StringConstraints(max_length=253)] | None = None
    branch: Annotated[str, StringConstraints(max_length=253)] | None = None
    pull_request: Annotated[int, Field(ge=1)] | None = None
    commit: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{7,40}$")] | None = None


class Lifecycle(_Model):
    """When the sandbox expires; ``lifecycle.expires_at`` does the arithmetic."""

    ttl: Annotated[str, StringConstraints(pattern=DURATION_PATTERN, max_length=32)] | None = None
    expires_at: str | None = None

    @pydantic.model_validator(mode="after")
    def _one_of(self) -> Lifecycle:
        if self.ttl is not None and self.expires_at is not None:
            raise ValueError("set ttl or expiresAt, not both")
        return self


class MiniSpec(_Model):
    owner: Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN)] | None = None
    source: Source = Source()
    lifecycle: Lifecycle = Lifecycle()
    suspend: bool = False
    nsq: Nsq = Nsq()
    elasticsearch: Elasticsearch = Elasticsearch()
    kibana: Kibana = Kibana()
    collector: Collector = Collector()
    enrich: Enrich = Enrich()
    sinks: Sinks = Sinks()
    iglu: Iglu = Iglu()


def parse(spec: dict[str, Any] | None) -> MiniSpec:
    """Read a SnowplowMini's ``spec``; raises ``InvalidSpecError`` listing every problem."""
    try:
        return MiniSpec.model_validate(spec or {})
    except pydantic.ValidationError as exc:
        raise InvalidSpecError([_describe(error) for error in exc.errors()]) from exc


def _describe(error: Any) -> str:
    path = "spec" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
    )
    message = error["msg"].removeprefix("Value error, ")
    message = re.sub(r"^Input should be", "expected", message)
    message = re.sub(r"^String should match pattern", "expected a string matching", message)
    if error["type"] == "missing":
        return f"{path}: missing, expected a value"
    shown = repr(error.get("input"))
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{path}: got {shown}, {message}"
