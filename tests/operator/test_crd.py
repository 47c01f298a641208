"""The CRD file: its shape, printer columns, CEL rules, and defaults that match the operator."""

from __future__ import annotations

import copy
from typing import Any

from snowplow_operator import naming, specs
from tests.operator import cluster

CRD = cluster.load_crd()
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting as the API server does it: missing fields take their default,
    then the defaulted value is defaulted in turn."""
    if schema.get("type") == "object" and isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
    if schema.get("type") == "array" and isinstance(value, list):
        value = [apply_defaults(schema["items"], item) for item in value]
    return value


def test_crd_names_the_api_we_serve() -> None:
    assert CRD["metadata"]["name"] == f"{naming.PLURAL}.{naming.GROUP}"
    assert CRD["spec"]["group"] == naming.GROUP
    assert CRD["spec"]["scope"] == "Namespaced"
    assert CRD["spec"]["names"]["kind"] == naming.KIND
    assert CRD["spec"]["names"]["shortNames"] == ["mini", "spmini"]
    assert (VERSION["name"], VERSION["served"], VERSION["storage"]) == (naming.VERSION, True, True)
    assert VERSION["subresources"] == {"status": {}}


def test_printer_columns_show_ready_reason_owner_branch_expiry_and_urls() -> None:
    columns = [
        (c["name"], c["jsonPath"], c.get("priority", 0))
        for c in VERSION["additionalPrinterColumns"]
    ]

    assert columns == [
        ("Ready", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("Reason", '.status.conditions[?(@.type=="Ready")].reason', 0),
        ("Owner", ".spec.owner", 0),
        ("Branch", ".spec.source.branch", 0),
        ("Expires", ".status.expiresAt", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Collector", ".status.endpoints.collector", 1),
        ("Kibana", ".status.endpoints.kibana", 1),
    ]


def test_schema_defaults_match_the_operator_model() -> None:
    defaulted = apply_defaults(SCHEMA["properties"]["spec"], {})

    assert defaulted == specs.parse({}).model_dump(by_alias=True, exclude_none=True)


def test_defaults_inside_list_items_match_the_operator_model() -> None:
    spec = {
        "iglu": {
            "registries": [{"name": "a", "uri": "https://a", "apiKeySecretRef": {"name": "s"}}]
        }
    }

    defaulted = apply_defaults(SCHEMA["properties"]["spec"], copy.deepcopy(spec))

    assert defaulted == specs.parse(spec).model_dump(by_alias=True, exclude_none=True)


def test_status_is_fully_declared_with_conditions_as_a_map() -> None:
    status = SCHEMA["properties"]["status"]
    conditions = status["properties"]["conditions"]

    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) == {
        "type",
        "status",
        "lastTransitionTime",
        "reason",
        "message",
    }
    assert "observedGeneration" in conditions["items"]["properties"]


def test_lifecycle_fields_are_reserved_with_a_mutual_exclusion_rule() -> None:
    lifecycle = SCHEMA["properties"]["spec"]["properties"]["lifecycle"]

    assert set(lifecycle["properties"]) == {"ttl", "expiresAt"}
    assert (
        lifecycle["x-kubernetes-validations"][0]["rule"]
        == "!(has(self.ttl) && has(self.expiresAt))"
    )
