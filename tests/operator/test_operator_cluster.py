"""The operator against the real control plane (kube-apiserver, controller-manager, scheduler)
with kwok nodes: pods are scheduled and marked Ready, but no container runs."""

from __future__ import annotations

import kubernetes
import pytest

from snowplow_operator import naming
from tests.operator import cluster

pytestmark = pytest.mark.kubernetes

DEPLOYMENTS = ["collector", "elasticsearch", "enrich", "kibana", "nsq", "sink-bad", "sink-good"]


def deployments(api: kubernetes.client.ApiClient, namespace: str, mini: str) -> dict[str, dict]:
    """Deployments of one mini by component, as plain dicts."""
    apps = kubernetes.client.AppsV1Api(api)
    selector = f"{naming.LABEL_INSTANCE}={mini}"
    items = apps.list_namespaced_deployment(namespace, label_selector=selector).items
    return {
        d.metadata.labels[naming.LABEL_COMPONENT]: api.sanitize_for_serialization(d) for d in items
    }


def test_applied_mini_becomes_ready_with_every_child(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, operator
) -> None:
    minis.create("dev", {"owner": "alice", "source": {"branch": "feature/Big_Thing"}})

    mini = minis.wait_for_ready("dev", timeout_seconds=90)

    assert sorted(deployments(kube_api, namespace, "dev")) == DEPLOYMENTS
    ready = cluster.condition(mini, "Ready")
    assert (ready["reason"], ready["observedGeneration"]) == ("AllComponentsReady", 1)
    assert mini["status"]["endpoints"]["collector"] == f"http://dev-collector.{namespace}.svc:8080"
