"""The chart installed with helm into the real control plane, and its operator running with
only the chart's ServiceAccount: a SnowplowMini reaches Ready (the RBAC is enough) and what the
chart does not grant is refused with 403 (the RBAC is no wider than it says)."""

from __future__ import annotations

import pathlib
import re
import urllib.request
from collections.abc import Callable

import kubernetes
import pytest
import yaml

from snowplow_operator import naming
from tests.chart import charting, installing
from tests.components.kube_cluster import KubeCluster
from tests.operator import cluster

pytestmark = [pytest.mark.kubernetes, pytest.mark.helm]
READY_TIMEOUT_SECONDS = 120


def load_example() -> charting.Object:
    return yaml.safe_load(charting.EXAMPLE_FILE.read_text())


def create_example(api: kubernetes.client.ApiClient, namespace: str) -> str:
    example = load_example()
    kubernetes.client.CustomObjectsApi(api).create_namespaced_custom_object(
        naming.GROUP, naming.VERSION, namespace, naming.PLURAL, example
    )
    return example["metadata"]["name"]


def assert_no_forbidden_in_log(log_path: pathlib.Path) -> None:
    log = log_path.read_text()
    assert not re.search(r"\b403\b|forbidden", log, re.IGNORECASE), log[-3000:]


def fullname(release: installing.Release) -> str:
    return f"{release.name}-snowplow-mini-operator"


def test_example_mini_passes_the_crds_validation_on_the_apiserver(
    admin_api: kubernetes.client.ApiClient, new_namespace: Callable[[str], str]
) -> None:
    cluster.install_crd(admin_api)
    namespace = new_namespace("example")
    custom = kubernetes.client.CustomObjectsApi(admin_api)
    args = (naming.GROUP, naming.VERSION, namespace, naming.PLURAL)
    broken = load_example()
    broken["spec"]["source"]["pullRequest"] = 0

    accepted = custom.create_namespaced_custom_object(*args, load_example(), dry_run="All")
    with pytest.raises(kubernetes.client.ApiException) as refused:
        custom.create_namespaced_custom_object(*args, broken, dry_run="All")

    assert accepted["spec"]["owner"] == "alice"
    assert accepted["spec"]["collector"]["cookie"]["secure"] is False
    assert refused.value.status == 422
    assert "spec.source.pullRequest" in refused.value.body
    assert custom.list_namespaced_custom_object(*args)["items"] == []


def test_cluster_wide_chart_operator_with_its_service_account_reconciles_to_ready(
    admin_api: kubernetes.client.ApiClient,
    kube_cluster: KubeCluster,
    release: installing.Release,
    new_namespace: Callable[[str], str],
    start_operator: Callable[..., installing.LocalOperator],
    tmp_path: pathlib.Path,
) -> None:
    out = release.install()
    manifests = release.manifests()
    deployment = kubernetes.client.AppsV1Api(admin_api).read_namespaced_deployment(
        fullname(release), release.namespace
    )
    assert "kubectl wait --for=condition=Ready snowplowmini/demo" in out
    # The pod passed the namespace's restricted Pod Security admission and kwok runs it.
    assert deployment.status.available_replicas == 1
    token_config = installing.service_account_kubeconfig(
        admin_api, kube_cluster, namespace=release.namespace, name=fullname(release),
        path=tmp_path / "sa.kubeconfig",
    )  # fmt: skip
    namespace = new_namespace("dev")

    operator = start_operator(installing.container_args(manifests), token_config)
    name = create_example(admin_api, namespace)

    mini = cluster.Minis(admin_api, namespace).wait_for_ready(
        name, timeout_seconds=READY_TIMEOUT_SECONDS
    )
    assert cluster.condition(mini, "Ready")["reason"] == "AllComponentsReady"
    with urllib.request.urlopen(operator.liveness_url, timeout=10) as response:
        assert response.status == 200
    assert_no_forbidden_in_log(operator.process.log_path)

    # What the chart does not grant is refused to the same identity.
    with kubernetes.config.new_client_from_config(config_file=str(token_config)) as sa:
        core = kubernetes.client.CoreV1Api(sa)
        kubernetes.client.CoreV1Api(admin_api).create_namespaced_secret(
            namespace, {"metadata": {"name": "keep-me"}, "stringData": {"k": "v"}}
        )
        assert (
            installing.status_of(lambda: core.delete_namespaced_secret("keep-me", namespace)) == 403
        )
        assert (
            installing.status_of(lambda: core.delete_collection_namespaced_secret(namespace)) == 403
        )
        assert installing.status_of(core.list_node) == 403
        assert installing.status_of(lambda: core.list_namespaced_pod(namespace)) == 403
        assert (
            installing.status_of(
                lambda: kubernetes.client.CustomObjectsApi(sa).create_namespaced_custom_object(
                    naming.GROUP,
                    naming.VERSION,
                    namespace,
                    naming.PLURAL,
                    {
                        "apiVersion": naming.API_VERSION,
                        "kind": naming.KIND,
                        "metadata": {"name": "made-by-the-operator"},
                        "spec": {},
                    },
                )
            )
            == 403
        )
        assert installing.status_of(lambda: core.list_secret_for_all_namespaces(limit=1)) == 200
    operator.process.stop()

    # Uninstalling keeps the CRD (and so every SnowplowMini) but removes the operator's access.
    release.uninstall()
    extensions = kubernetes.client.ApiextensionsV1Api(admin_api)
    rbac = kubernetes.client.RbacAuthorizationV1Api(admin_api)
    assert extensions.read_custom_resource_definition(f"{naming.PLURAL}.{naming.GROUP}")
    assert cluster.Minis(admin_api, namespace).exists(name)
    assert installing.status_of(lambda: rbac.read_cluster_role(fullname(release))) == 404


def test_namespace_mode_operator_works_with_a_role_binding_only(
    admin_api: kubernetes.client.ApiClient,
    kube_cluster: KubeCluster,
    release: installing.Release,
    new_namespace: Callable[[str], str],
    start_operator: Callable[..., installing.LocalOperator],
    tmp_path: pathlib.Path,
) -> None:
    cluster.install_crd(admin_api)
    namespace = new_namespace("dev")
    other = new_namespace("other")
    release.install({"watchNamespaces": f"{{{namespace}}}", "crds.install": "false"})
    manifests = release.manifests()
    rbac = kubernetes.client.RbacAuthorizationV1Api(admin_api)
    token_config = installing.service_account_kubeconfig(
        admin_api, kube_cluster, namespace=release.namespace, name=fullname(release),
        path=tmp_path / "sa.kubeconfig",
    )  # fmt: skip

    operator = start_operator(installing.container_args(manifests), token_config)
    name = create_example(admin_api, namespace)

    mini = cluster.Minis(admin_api, namespace).wait_for_ready(
        name, timeout_seconds=READY_TIMEOUT_SECONDS
    )
    assert cluster.condition(mini, "Ready")["reason"] == "AllComponentsReady"
    assert_no_forbidden_in_log(operator.process.log_path)
    assert charting.find(manifests, "ClusterRoleBinding") == []
    bound = [
        b.metadata.name
        for b in rbac.list_cluster_role_binding().items
        if any(s.name == fullname(release) for s in b.subjects or [])
    ]
    assert bound == []
    assert [b["metadata"]["namespace"] for b in charting.find(manifests, "RoleBinding")] == [
        namespace
    ]
    with kubernetes.config.new_client_from_config(config_file=str(token_config)) as sa:
        custom = kubernetes.client.CustomObjectsApi(sa)
        core = kubernetes.client.CoreV1Api(sa)
        extensions = kubernetes.client.ApiextensionsV1Api(sa)
        assert (
            installing.status_of(
                lambda: custom.list_namespaced_custom_object(
                    naming.GROUP, naming.VERSION, other, naming.PLURAL
                )
            )
            == 403
        )
        assert installing.status_of(lambda: core.list_namespaced_secret(other)) == 403
        assert installing.status_of(lambda: core.list_secret_for_all_namespaces()) == 403
        assert installing.status_of(extensions.list_custom_resource_definition) == 403

    # An upgrade that turns metrics on changes the one Deployment in place.
    release.upgrade({"metrics.enabled": "true"})
    upgraded = release.manifests()
    service = charting.only(upgraded, "Service", f"{fullname(release)}-metrics")
    assert service["spec"]["ports"][0]["port"] == 9100
    assert "--metrics-port" in installing.container_args(upgraded)
    deployment = kubernetes.client.AppsV1Api(admin_api).read_namespaced_deployment(
        fullname(release), release.namespace
    )
    assert deployment.spec.replicas == 1
