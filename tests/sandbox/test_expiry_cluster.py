"""Expiry, suspend and resume on the real control plane (kwok nodes: pods become Ready, no
container runs). The operator runs with a short sweep interval and warning lead."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import kubernetes
import pytest

from snowplow_operator import naming, slugs
from tests.operator import cluster

pytestmark = pytest.mark.kubernetes

FAST_SWEEP = ("--sweep-interval-seconds", "0.5", "--expiry-warning-seconds", "4")


def events_of(api: kubernetes.client.ApiClient, namespace: str, name: str) -> list[tuple]:
    """(type, reason, message) of the Events on one SnowplowMini, oldest first."""
    core = kubernetes.client.CoreV1Api(api)
    items = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    ).items
    items.sort(key=lambda e: e.metadata.creation_timestamp)
    return [(e.type, e.reason, e.message) for e in items]


def replicas(api: kubernetes.client.ApiClient, namespace: str, mini: str) -> dict[str, tuple]:
    """(spec replicas, status replicas) of each Deployment of a mini, by component."""
    apps = kubernetes.client.AppsV1Api(api)
    items = apps.list_namespaced_deployment(
        namespace, label_selector=f"{naming.LABEL_INSTANCE}={mini}"
    ).items
    return {
        d.metadata.labels[naming.LABEL_COMPONENT]: (d.spec.replicas, d.status.replicas or 0)
        for d in items
    }


def claims(api: kubernetes.client.ApiClient, namespace: str) -> list[str]:
    core = kubernetes.client.CoreV1Api(api)
    return [c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items]


def test_short_ttl_warns_then_deletes_the_sandbox(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, start_operator
) -> None:
    start_operator(*FAST_SWEEP)
    minis.create("ttl", {"lifecycle": {"ttl": "8s"}})
    created = minis.get("ttl")["metadata"]["creationTimestamp"]

    mini = cluster.poll(
        lambda: (minis.get("ttl").get("status") or {}).get("expiresAt") and minis.get("ttl"),
        timeout_seconds=30,
        what="status.expiresAt",
    )
    cluster.poll(lambda: not minis.exists("ttl"), timeout_seconds=40, what="ttl deleted")

    from snowplow_operator import lifecycle

    expected = lifecycle.parse_time(created) + lifecycle.parse_duration("8s")
    assert mini["status"]["expiresAt"] == lifecycle.format_time(expected)
    warnings = [(t, r) for t, r, _ in events_of(kube_api, namespace, "ttl") if t == "Warning"]
    assert warnings == [("Warning", "ExpiringSoon"), ("Warning", "Expired")]
    messages = {r: m for _, r, m in events_of(kube_api, namespace, "ttl")}
    assert messages["ExpiringSoon"].startswith(
        f"the sandbox expires at {mini['status']['expiresAt']}"
    )
    assert messages["Expired"].endswith("; deleting it")
    cluster.poll(
        lambda: not replicas(kube_api, namespace, "ttl"),
        timeout_seconds=90,
        what="children garbage-collected",
    )


def test_expiry_in_suspend_mode_scales_to_zero_and_keeps_the_sandbox(
    kube_api: kubernetes.client.ApiClient, namespace: str, minis: cluster.Minis, start_operator
) -> None:
    start_operator(*FAST_SWEEP, "--expiry-action", "suspend")
    minis.create("sleepy", {"lifecycle": {"ttl": "6s"}})

    mini = minis.wait_for_condition("sleepy", "Ready", "False", timeout_seconds=5)
    mini = cluster.poll(
        lambda: cluster.is_condition_met(minis.get("sleepy"), "Suspended") and minis.get("sleepy"),
        timeout_seconds=40,
        what="sleepy Suspended",
    )

    ready = cluster.condition(mini, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Expired")
    assert cluster.condition(mini, "Suspended")["reason"] == "Expired"
    cluster.poll(
        lambda: set(replicas(kube_api, namespace, "sleepy").values()) == {(0, 0)},
        timeout_seconds=30,
        what="every Deployment at zero",
    )
    reasons = [r for _, r, _ in events_of(kube_api, namespace, "sleepy")]
    assert "ExpiringSoon" in reasons and "Expired" in reasons
    assert minis.exists("sleepy")


@pytest.fixture
def volume_for_claim(
    kube_api: kubernetes.client.ApiClient, namespace: str
) -> Iterator[Callable[[str], None]]:
    """Pre-bound PersistentVolumes: the test cluster has no storage provisioner."""
    core = kubernetes.client.CoreV1Api(kube_api)
    created: list[str] = []

    def provide(claim: str) -> None:
        name = f"{namespace}-{claim}"
        core.create_persistent_volume(
            {
                "metadata": {"name": name},
                "spec": {
                    "capacity": {"storage": "5Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": f"/tmp/{name}"},
                    "claimRef": {"namespace": namespace, "name": claim},
                },
            }
        )
        created.append(name)

    yield provide
    for name in created:
        core.delete_persistent_volume(name)


def test_suspend_keeps_the_elasticsearch_claim_and_resume_is_ready_again(
    kube_api: kubernetes.client.ApiClient,
    namespace: str,
    minis: cluster.Minis,
    operator,
    volume_for_claim: Callable[[str], None],
) -> None:
    volume_for_claim("keep-elasticsearch-data")
    minis.create("keep", {"elasticsearch": {"storage": {"persistent": True}}})
    minis.wait_for_ready("keep", timeout_seconds=90)
    claim_uid = _claim_uid(kube_api, namespace, "keep-elasticsearch-data")

    minis.patch_spec("keep", {"suspend": True})
    suspended = minis.wait_for_condition("keep", "Suspended", "True", timeout_seconds=30)
    cluster.poll(
        lambda: set(replicas(kube_api, namespace, "keep").values()) == {(0, 0)},
        timeout_seconds=30,
        what="every Deployment at zero",
    )
    assert cluster.condition(minis.get("keep"), "Ready")["reason"] == "Suspended"
    assert claims(kube_api, namespace) == ["keep-elasticsearch-data"]

    minis.patch_spec("keep", {"suspend": False})
    resumed = minis.wait_for_ready("keep", timeout_seconds=90)

    assert suspended["metadata"]["generation"] == 2
    assert cluster.condition(resumed, "Suspended")["reason"] == "Resumed"
    assert set(replicas(kube_api, namespace, "keep").values()) == {(1, 1)}
    assert _claim_uid(kube_api, namespace, "keep-elasticsearch-data") == claim_uid


def test_long_unicode_branch_name_is_a_valid_sandbox_on_the_cluster(
    minis: cluster.Minis, operator
) -> None:
    branch = "Feature/Ünïcode_分支/" + "Long-Name" * 20
    name = slugs.sandbox_name(branch)

    minis.create(name, {"source": {"branch": branch}})
    mini = minis.wait_for_ready(name, timeout_seconds=90)

    assert len(branch) > 180 and len(name) == naming.MAX_NAME_LENGTH
    assert mini["spec"]["source"]["branch"] == branch
    assert mini["status"]["endpoints"]["collector"].startswith(f"http://{name}-collector.")


def _claim_uid(api: kubernetes.client.ApiClient, namespace: str, name: str) -> str:
    core = kubernetes.client.CoreV1Api(api)
    return core.read_namespaced_persistent_volume_claim(name, namespace).metadata.uid
