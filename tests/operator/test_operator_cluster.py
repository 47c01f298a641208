"""The operator against the real control plane (kube-apiserver, controller-manager, scheduler)
with kwok nodes: pods are scheduled and marked Ready, but no container runs."""

from __future__ import annotations

import json
import urllib.request

import kubernetes
import pytest

from snowplow_operator import naming
from tests.components.processes import free_port
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


CHILD_KINDS = (
    ("apps/v1", "deployments"),
    ("batch/v1", "jobs"),
    ("v1", "services"),
    ("v1", "configmaps"),
    ("v1", "secrets"),
)


def children(api: kubernetes.client.ApiClient, namespace: str, mini: str) -> dict[str, dict]:
    """Every child of a mini, keyed ``<kind>/<name>``, as plain dicts."""
    found = {}
    selector = f"{naming.LABEL_INSTANCE}={mini},{naming.LABEL_MANAGED_BY}={naming.MANAGER}"
    for api_version, plural in CHILD_KINDS:
        root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        listing = kube_get(api, f"{root}/namespaces/{namespace}/{plural}", selector)
        for item in listing["items"]:
            found[f"{plural}/{item['metadata']['name']}"] = item
    return found


def kube_get(api: kubernetes.client.ApiClient, path: str, selector: str | None = None) -> dict:
    query = [("labelSelector", selector)] if selector else []
    response = api.call_api(
        path, "GET", query_params=query, auth_settings=["BearerToken"], _preload_content=False
    )
    return json.loads(response.data)


def scrape(port: int, metric: str) -> float:
    """A counter or gauge (summed over labels) from the operator's /metrics; 0 until it serves."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(metric) and not line.startswith("#")
    ]
    return sum(values)


def test_mini_carries_no_finalizer_and_no_kopf_annotations(minis: cluster.Minis, operator) -> None:
    minis.create("dev")

    mini = minis.wait_for_ready("dev")

    assert mini["metadata"].get("finalizers") is None
    assert not [a for a in mini["metadata"].get("annotations", {}) if "kopf" in a]


def test_every_child_is_owned_labelled_and_pods_run_under_restricted_security(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, operator
) -> None:
    created = minis.create("dev", {"owner": "alice", "source": {"branch": "feature/X"}})

    minis.wait_for_ready("dev")

    found = children(kube_api, namespace, "dev")
    assert len(found) == 18
    for child in found.values():
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "SnowplowMini",
            created["metadata"]["uid"],
            True,
        )
        assert child["metadata"]["labels"]["snowplowmini.dev/owner"] == "alice"
        assert child["metadata"]["labels"]["snowplowmini.dev/branch-slug"] == "feature-x"
    namespace_labels = (
        kubernetes.client.CoreV1Api(kube_api).read_namespace(namespace).metadata.labels
    )
    assert namespace_labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = kubernetes.client.CoreV1Api(kube_api).list_namespaced_pod(namespace).items
    assert sorted(p.status.phase for p in pods) == ["Running"] * 7 + ["Succeeded"]


def test_spec_change_rolls_only_the_affected_deployment_and_ready_follows_the_generation(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, operator
) -> None:
    minis.create("dev")
    minis.wait_for_ready("dev")
    before = {
        c: d["metadata"]["generation"] for c, d in deployments(kube_api, namespace, "dev").items()
    }

    changed = minis.patch_spec("dev", {"collector": {"cookie": {"name": "sp2"}}})
    not_yet = cluster.is_condition_met(minis.get("dev"), "Ready")
    mini = minis.wait_for_ready("dev")

    assert changed["metadata"]["generation"] == 2
    assert not_yet is False
    after = {
        c: d["metadata"]["generation"] for c, d in deployments(kube_api, namespace, "dev").items()
    }
    assert {c for c in before if after[c] != before[c]} == {"collector"}
    assert cluster.condition(mini, "Ready")["observedGeneration"] == 2
    assert mini["status"]["observedGeneration"] == 2
    config = kubernetes.client.CoreV1Api(kube_api).read_namespaced_config_map(
        "dev-collector", namespace
    )
    assert config.data["SNOWPLOW_COLLECTOR_COOKIE__NAME"] == "sp2"


def test_children_deleted_or_edited_by_hand_are_restored(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, operator
) -> None:
    minis.create("dev")
    minis.wait_for_ready("dev")
    apps = kubernetes.client.AppsV1Api(kube_api)
    core = kubernetes.client.CoreV1Api(kube_api)
    old_uid = apps.read_namespaced_deployment("dev-enrich", namespace).metadata.uid

    apps.delete_namespaced_deployment("dev-enrich", namespace)
    core.delete_namespaced_config_map("dev-collector", namespace)
    core.patch_namespaced_service(
        "dev-kibana",
        namespace,
        {"spec": {"ports": [{"name": "http", "port": 5601, "targetPort": 9999}]}},
    )

    def restored() -> bool:
        try:
            enrich = apps.read_namespaced_deployment("dev-enrich", namespace)
            config = core.read_namespaced_config_map("dev-collector", namespace)
        except kubernetes.client.ApiException:
            return False
        service = core.read_namespaced_service("dev-kibana", namespace)
        return (
            enrich.metadata.uid != old_uid
            and config.data["SNOWPLOW_COLLECTOR_PORT"] == "8080"
            and [p.target_port for p in service.spec.ports] == ["http"]
        )

    cluster.poll(
        restored, timeout_seconds=30, what="hand-deleted and hand-edited children restored"
    )
    minis.wait_for_ready("dev")


def test_operator_restart_changes_nothing(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, start_operator
) -> None:
    first = start_operator()
    minis.create("dev")
    minis.wait_for_ready("dev")
    before = {
        k: v["metadata"]["resourceVersion"] for k, v in children(kube_api, namespace, "dev").items()
    }
    mini_before = minis.get("dev")["metadata"]["resourceVersion"]
    first.stop()

    port = free_port()
    start_operator("--metrics-port", str(port))
    cluster.poll(
        lambda: scrape(port, 'snowplowmini_reconcile_total{result="success"}') >= 1,
        timeout_seconds=30,
        what="the restarted operator's first reconcile",
    )

    after = {
        k: v["metadata"]["resourceVersion"] for k, v in children(kube_api, namespace, "dev").items()
    }
    assert after == before
    assert minis.get("dev")["metadata"]["resourceVersion"] == mini_before


def test_deleting_a_mini_with_the_operator_stopped_collects_its_children(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, start_operator
) -> None:
    operator = start_operator()
    minis.create("dev")
    minis.wait_for_ready("dev")
    operator.stop()

    minis.delete("dev")

    cluster.poll(lambda: not minis.exists("dev"), timeout_seconds=5, what="the mini gone at once")
    cluster.poll(
        lambda: not children(kube_api, namespace, "dev"),
        timeout_seconds=60,
        what="every child garbage-collected",
    )


def test_deleting_the_namespace_with_the_operator_stopped_never_hangs(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, start_operator
) -> None:
    operator = start_operator()
    minis.create("dev")
    minis.wait_for_ready("dev")
    operator.stop()
    core = kubernetes.client.CoreV1Api(kube_api)

    core.delete_namespace(namespace)

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except kubernetes.client.ApiException as exc:
            return exc.status == 404
        return False

    cluster.poll(gone, timeout_seconds=90, what=f"namespace {namespace} deleted")


def test_child_deleted_while_the_operator_is_down_comes_back_when_it_starts(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, start_operator
) -> None:
    first = start_operator()
    minis.create("dev")
    minis.wait_for_ready("dev")
    first.stop()
    apps = kubernetes.client.AppsV1Api(kube_api)

    apps.delete_namespaced_deployment("dev-sink-bad", namespace)
    cluster.poll(
        lambda: "dev-sink-bad" not in deployments_named(kube_api, namespace),
        timeout_seconds=30,
        what="the Deployment gone",
    )
    start_operator()

    cluster.poll(
        lambda: "dev-sink-bad" in deployments_named(kube_api, namespace),
        timeout_seconds=30,
        what="the Deployment restored",
    )
    minis.wait_for_ready("dev")


def test_ready_transitions_are_recorded_as_events(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, operator
) -> None:
    minis.create("dev")

    minis.wait_for_ready("dev")

    def reasons() -> list[tuple[str, str]]:
        items = kubernetes.client.CoreV1Api(kube_api).list_namespaced_event(namespace).items
        return [(e.type, e.reason) for e in items if e.involved_object.name == "dev"]

    found = cluster.poll(
        lambda: ("Normal", "AllComponentsReady") in reasons() and reasons(),
        timeout_seconds=10,
        what="the AllComponentsReady event",
    )
    assert ("Normal", "ComponentsNotReady") in found
    assert not [reason for kind, reason in found if kind == "Warning"]


def deployments_named(api: kubernetes.client.ApiClient, namespace: str) -> list[str]:
    items = kubernetes.client.AppsV1Api(api).list_namespaced_deployment(namespace).items
    return [d.metadata.name for d in items]
