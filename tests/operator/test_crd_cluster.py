"""The CRD as the real API server applies it: defaults, rejections naming the field, status."""

from __future__ import annotations

import json

import kubernetes
import pytest

from snowplow_operator import specs
from tests.operator import cluster

pytestmark = pytest.mark.kubernetes


def rejection(minis: cluster.Minis, name: str, spec: dict) -> str:
    with pytest.raises(kubernetes.client.ApiException) as caught:
        minis.create(name, spec)
    assert caught.value.status == 422
    return json.loads(caught.value.body)["message"]


def test_server_defaults_match_the_operator_model(minis: cluster.Minis) -> None:
    created = minis.create("dev")

    assert created["spec"] == specs.parse({}).model_dump(by_alias=True, exclude_none=True)


@pytest.mark.parametrize(
    ("name", "spec", "expected"),
    [
        pytest.param(
            "dev",
            {"iglu": {"registries": [{"name": "a", "uri": "https://a", "priority": -3}]}},
            "spec.iglu.registries[0].priority: Invalid value: -3: "
            "spec.iglu.registries[0].priority in body should be greater than or equal to 0",
            id="priority-below-0",
        ),
        pytest.param(
            "dev",
            {"iglu": {"registries": [{"name": "a", "uri": "ftp://a"}]}},
            "spec.iglu.registries[0].uri: Invalid value",
            id="registry-uri-not-http",
        ),
        pytest.param(
            "dev",
            {"lifecycle": {"ttl": "72h", "expiresAt": "2030-01-01T00:00:00Z"}},
            "spec.lifecycle.ttl: Invalid value: spec.lifecycle: set ttl or expiresAt, not both",
            id="ttl-and-expires-at",
        ),
        pytest.param(
            "dev",
            {"collector": {"cookie": {"sameSite": "Sometimes"}}},
            'spec.collector.cookie.sameSite: Unsupported value: "Sometimes"',
            id="same-site-enum",
        ),
        pytest.param(
            "dev",
            {"collector": {"settings": {"PORT": "1"}}},
            "spec.collector.settings: HOST, PORT and NSQ__* are set by the operator",
            id="collector-port-reserved",
        ),
        pytest.param(
            "dev",
            {"elasticsearch": {"heap": "2 GB"}},
            'spec.elasticsearch.heap: Invalid value: "2 GB"',
            id="heap-pattern",
        ),
        pytest.param(
            "dev",
            {"iglu": {"registries": [{"name": "a", "uri": "https://a"}] * 2}},
            'spec.iglu.registries[1]: Duplicate value: {"name":"a"}',
            id="duplicate-registry",
        ),
        pytest.param(
            "a-name-that-is-much-too-long-for-children-names",
            {},
            "metadata.name: expected a DNS label of at most 40 characters",
            id="name-too-long",
        ),
    ],
)
def test_invalid_specs_are_rejected_naming_the_field(
    minis: cluster.Minis, name: str, spec: dict, expected: str
) -> None:
    message = rejection(minis, name, spec)

    assert expected in message


def test_status_writes_do_not_bump_the_generation(minis: cluster.Minis) -> None:
    minis.create("dev")

    minis.custom.patch_namespaced_custom_object_status(
        *minis._args(), "dev", {"status": {"observedGeneration": 1}}
    )

    mini = minis.get("dev")
    assert (mini["metadata"]["generation"], mini["status"]["observedGeneration"]) == (1, 1)
