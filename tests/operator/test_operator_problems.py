"""What the operator reports when it cannot apply a spec, and how it recovers."""

from __future__ import annotations

import base64
import json

import kubernetes
import pytest

from tests.operator import cluster

pytestmark = pytest.mark.kubernetes

REGISTRY = {
    "name": "acme",
    "uri": "https://iglu.acme.test/api",
    "apiKeySecretRef": {"name": "acme-iglu", "key": "apiKey"},
}


def events(api: kubernetes.client.ApiClient, namespace: str) -> list[tuple[str, str]]:
    items = kubernetes.client.CoreV1Api(api).list_namespaced_event(namespace).items
    return [(e.type, e.reason) for e in items if e.involved_object.kind == "SnowplowMini"]


def test_spec_only_the_operator_can_check_gives_ready_false_naming_the_field(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, operator
) -> None:
    bad = {"enrich": {"enrichments": [{"name": "ua", "config": {"enabled": True}}]}}

    minis.create("dev", bad)
    mini = minis.wait_for_condition("dev", "Ready", "False")

    ready = cluster.condition(mini, "Ready")
    assert (ready["reason"], ready["observedGeneration"]) == ("InvalidSpec", 1)
    assert ready["message"].startswith(
        "spec.enrich.enrichments[0].config: got {'enabled': True}, expected a self-describing JSON"
    )
    cluster.poll(
        lambda: ("Warning", "InvalidSpec") in events(kube_api, namespace),
        timeout_seconds=10,
        what="a Warning InvalidSpec event",
    )
    apps = kubernetes.client.AppsV1Api(kube_api)
    assert apps.list_namespaced_deployment(namespace).items == []


def test_missing_api_key_secret_gives_reference_not_found_until_it_exists(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, operator
) -> None:
    minis.create("dev", {"iglu": {"registries": [REGISTRY]}})
    mini = minis.wait_for_condition("dev", "Ready", "False")
    ready = cluster.condition(mini, "Ready")
    core = kubernetes.client.CoreV1Api(kube_api)

    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "acme-iglu"}, "stringData": {"apiKey": "k-123"}}
    )
    minis.wait_for_ready("dev", timeout_seconds=60)

    assert ready["reason"] == "ReferenceNotFound"
    assert ready["message"] == (
        f'spec.iglu.registries[0].apiKeySecretRef.name: Secret "acme-iglu" not found '
        f'in namespace "{namespace}"'
    )
    resolver = core.read_namespaced_secret("dev-iglu-resolver", namespace)
    document = json.loads(base64.b64decode(resolver.data["resolver.json"]))
    assert document["data"]["repositories"][1]["connection"]["http"]["apikey"] == "k-123"


def test_disabling_kibana_removes_its_children_and_stays_ready(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, operator
) -> None:
    minis.create("dev")
    minis.wait_for_ready("dev")

    minis.patch_spec("dev", {"kibana": {"enabled": False}})
    mini = minis.wait_for_ready("dev")

    kibana = cluster.condition(mini, "KibanaReady")
    assert (kibana["status"], kibana["reason"]) == ("True", "Disabled")
    assert "kibana" not in mini["status"]["endpoints"]
    apps = kubernetes.client.AppsV1Api(kube_api)
    cluster.poll(
        lambda: (
            "dev-kibana"
            not in [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items]
        ),
        timeout_seconds=30,
        what="the Kibana Deployment deleted",
    )


def test_twenty_minis_at_once_all_become_ready(minis: cluster.Minis, operator) -> None:
    names = [f"mini-{i:02d}" for i in range(20)]

    for name in names:
        minis.create(name, {"owner": "load"})
    ready = [minis.wait_for_ready(name, timeout_seconds=180) for name in names]

    assert [cluster.condition(m, "Ready")["reason"] for m in ready] == ["AllComponentsReady"] * 20
