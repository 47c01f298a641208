"""What a user types: the real ``kubectl`` of the pinned release against the operator."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from tests.components.kube_cluster import KubeCluster
from tests.operator import cluster

pytestmark = pytest.mark.kubernetes


def run_kubectl(
    kubectl: pathlib.Path, kube_cluster: KubeCluster, namespace: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl), "--kubeconfig", str(kube_cluster.kubeconfig), "-n", namespace, *args],
        capture_output=True,
        text=True,
        timeout=150,
    )


def test_kubectl_wait_for_ready_passes_for_the_current_generation(
    kubectl: pathlib.Path,
    kube_cluster: KubeCluster,
    namespace: str,
    minis: cluster.Minis,
    operator,
) -> None:
    minis.create("dev")

    first = run_kubectl(
        kubectl,
        kube_cluster,
        namespace,
        "wait",
        "--for=condition=Ready",
        "snowplowmini/dev",
        "--timeout=120s",
    )
    minis.patch_spec("dev", {"collector": {"cookie": {"name": "sp2"}}})
    second = run_kubectl(
        kubectl,
        kube_cluster,
        namespace,
        "wait",
        "--for=condition=Ready",
        "snowplowmini/dev",
        "--timeout=120s",
    )

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "snowplowmini.snowplowmini.dev/dev condition met"
    assert second.returncode == 0, second.stderr
    mini = minis.get("dev")
    assert mini["metadata"]["generation"] == 2
    assert cluster.condition(mini, "Ready")["observedGeneration"] == 2


def test_kubectl_get_shows_the_printer_columns(
    kubectl: pathlib.Path,
    kube_cluster: KubeCluster,
    namespace: str,
    minis: cluster.Minis,
    operator,
) -> None:
    minis.create("dev", {"owner": "alice", "source": {"branch": "feature/x"}})
    minis.wait_for_ready("dev")

    plain = run_kubectl(kubectl, kube_cluster, namespace, "get", "snowplowminis")
    wide = run_kubectl(kubectl, kube_cluster, namespace, "get", "mini", "-o", "wide")

    header, row = plain.stdout.splitlines()
    assert header.split()[:6] == ["NAME", "READY", "REASON", "OWNER", "BRANCH", "EXPIRES"]
    assert row.split()[:5] == ["dev", "True", "AllComponentsReady", "alice", "feature/x"]
    assert "COLLECTOR" in wide.stdout.splitlines()[0]
    assert f"http://dev-collector.{namespace}.svc:8080" in wide.stdout
