"""The chart as helm renders it: lint, the values schema, and the manifests of several value
sets checked field by field (RBAC rules exactly, security context, probe, strategy, images)."""

from __future__ import annotations

import pathlib
import tomllib

import pytest
import yaml

from snowplow_operator import images
from tests.chart import charting

pytestmark = pytest.mark.helm

NAMESPACED = {
    ("snowplowmini.dev", "snowplowminis", "get"),
    ("snowplowmini.dev", "snowplowminis", "list"),
    ("snowplowmini.dev", "snowplowminis", "watch"),
    ("snowplowmini.dev", "snowplowminis", "delete"),  # the sweeper deletes expired sandboxes
    ("snowplowmini.dev", "snowplowminis/status", "patch"),
    ("snowplowmini.dev", "snowplowminis/finalizers", "update"),
    *(
        (group, resource, verb)
        for group, resource in (("apps", "deployments"), ("batch", "jobs"), ("", "services"))
        for verb in ("get", "list", "watch", "create", "patch", "delete")
    ),
    *(
        ("", resource, verb)
        for resource in ("configmaps", "secrets")
        for verb in ("get", "list", "watch", "create", "patch")
    ),
    ("", "persistentvolumeclaims", "create"),
    ("", "persistentvolumeclaims", "patch"),
    ("", "events", "create"),
}
CLUSTER_WIDE = NAMESPACED | {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}
FULLNAME = "spmo-snowplow-mini-operator"


def operator_container(manifests: list[charting.Object]) -> charting.Object:
    deployment = charting.only(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_chart_passes_helm_lint(helm: pathlib.Path) -> None:
    out = charting.run(helm, "lint", str(charting.CHART), "--strict", "--kube-version", "1.36.3")

    assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_cluster_wide_mode_binds_exactly_the_operators_rules_cluster_wide(
    helm: pathlib.Path,
) -> None:
    manifests = charting.template(helm)

    role = charting.only(manifests, "ClusterRole", FULLNAME)
    binding = charting.only(manifests, "ClusterRoleBinding", FULLNAME)
    assert charting.rule_set(role["rules"]) == CLUSTER_WIDE
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": FULLNAME,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": "snowplow-operator"}
    ]
    assert charting.find(manifests, "Role") == []
    assert charting.find(manifests, "RoleBinding") == []
    assert "--namespace" not in operator_container(manifests)["args"]


def test_namespace_mode_grants_roles_in_the_watched_namespaces_only(helm: pathlib.Path) -> None:
    manifests = charting.template(helm, {"watchNamespaces": "{dev,qa}"})

    roles = charting.find(manifests, "Role")
    bindings = charting.find(manifests, "RoleBinding")
    assert [r["metadata"]["namespace"] for r in roles] == ["dev", "qa"]
    assert all(charting.rule_set(r["rules"]) == NAMESPACED for r in roles)
    assert [b["metadata"]["namespace"] for b in bindings] == ["dev", "qa"]
    assert all(
        b["subjects"]
        == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": "snowplow-operator"}]
        and b["roleRef"]["kind"] == "Role"
        for b in bindings
    )
    assert charting.find(manifests, "ClusterRole", FULLNAME) == []
    assert charting.find(manifests, "ClusterRoleBinding") == []
    args = operator_container(manifests)["args"]
    assert args[-4:] == ["--namespace", "dev", "--namespace", "qa"]


def test_aggregated_roles_let_namespace_editors_manage_minis(helm: pathlib.Path) -> None:
    manifests = charting.template(helm)

    edit = charting.only(manifests, "ClusterRole", f"{FULLNAME}-edit")
    view = charting.only(manifests, "ClusterRole", f"{FULLNAME}-view")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert charting.rule_set(view["rules"]) == {
        ("snowplowmini.dev", resource, verb)
        for resource in ("snowplowminis", "snowplowminis/status")
        for verb in ("get", "list", "watch")
    }
    off = charting.template(helm, {"rbac.aggregateToDefaultRoles": "false"})
    assert charting.find(off, "ClusterRole", f"{FULLNAME}-edit") == []


def test_deployment_runs_one_restricted_replica_with_recreate_and_liveness(
    helm: pathlib.Path,
) -> None:
    manifests = charting.template(helm)

    deployment = charting.only(manifests, "Deployment", FULLNAME)
    pod = deployment["spec"]["template"]["spec"]
    container = operator_container(manifests)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["serviceAccountName"] == FULLNAME
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"] == {
        "httpGet": {"path": "/healthz", "port": "liveness"},
        "initialDelaySeconds": 10,
        "periodSeconds": 20,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }
    assert container["ports"] == [{"name": "liveness", "containerPort": 8080, "protocol": "TCP"}]
    assert container["args"] == [
        "--log-format", "json", "--log-level", "INFO", "operator",
        "--workers", "4", "--resync-seconds", "300",
        "--liveness-url", "http://0.0.0.0:8080/healthz",
    ]  # fmt: skip
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_metrics_on_adds_the_port_the_flags_and_a_service(helm: pathlib.Path) -> None:
    manifests = charting.template(helm, {"metrics.enabled": "true", "metrics.port": "9200"})

    container = operator_container(manifests)
    service = charting.only(manifests, "Service", f"{FULLNAME}-metrics")
    assert container["args"][-4:] == ["--metrics-host", "0.0.0.0", "--metrics-port", "9200"]
    assert {"name": "metrics", "containerPort": 9200, "protocol": "TCP"} in container["ports"]
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9200, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == {
        "app.kubernetes.io/name": "snowplow-mini-operator",
        "app.kubernetes.io/instance": "spmo",
    }
    assert charting.find(charting.template(helm), "Service") == []


def test_crd_is_the_plain_manifest_with_the_keep_policy(helm: pathlib.Path) -> None:
    plain = yaml.safe_load(charting.CRD_FILE.read_text())

    crd = charting.only(charting.template(helm), "CustomResourceDefinition")
    not_kept = charting.only(
        charting.template(helm, {"crds.keep": "false"}), "CustomResourceDefinition"
    )

    assert crd["spec"] == plain["spec"]
    assert crd["metadata"]["name"] == plain["metadata"]["name"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert plain["metadata"]["labels"].items() <= crd["metadata"]["labels"].items()
    assert "annotations" not in not_kept["metadata"]


def test_chart_reads_the_crd_from_the_crds_folder_through_a_link() -> None:
    link = charting.CHART / "files" / charting.CRD_FILE.name

    assert link.is_symlink()
    assert link.resolve() == charting.CRD_FILE.resolve()


def test_crd_install_off_renders_no_crd(helm: pathlib.Path) -> None:
    manifests = charting.template(helm, {"crds.install": "false"})

    assert charting.find(manifests, "CustomResourceDefinition") == []
    assert charting.find(manifests, "Deployment") != []


def test_custom_operator_image_and_pull_settings_are_used(helm: pathlib.Path) -> None:
    values = {
        "images.operator.repository": "registry.example/team/operator",
        "images.operator.tag": "0.1.0-rc1",
        "images.pullPolicy": "Always",
        "imagePullSecrets[0].name": "pull",
        "images.pipeline.tag": "0.1.0-rc1",
    }

    manifests = charting.template(helm, values)

    container = operator_container(manifests)
    pod = charting.only(manifests, "Deployment")["spec"]["template"]["spec"]
    assert container["image"] == "registry.example/team/operator:0.1.0-rc1"
    assert container["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "pull"}]


def test_component_images_reach_the_operator_as_its_settings(helm: pathlib.Path) -> None:
    manifests = charting.template(
        helm, {"images.nsq.tag": "v1.2.1", "images.kibana.repository": "mirror/kibana"}
    )

    env = {item["name"]: item["value"] for item in operator_container(manifests)["env"]}
    assert env == {
        "SNOWPLOW_OPERATOR_PIPELINE_IMAGE": f"{images.PIPELINE_REPOSITORY}:0.1.0",
        "SNOWPLOW_OPERATOR_NSQ_IMAGE": "nsqio/nsq:v1.2.1",
        "SNOWPLOW_OPERATOR_ELASTICSEARCH_IMAGE": images.ELASTICSEARCH,
        "SNOWPLOW_OPERATOR_KIBANA_IMAGE": "mirror/kibana:8.19.21",
    }


def test_default_images_are_the_ones_the_operator_runs() -> None:
    values = charting.load_values()["images"]
    chart = charting.load_chart_metadata()
    version = tomllib.loads((charting.ROOT / "pyproject.toml").read_text())["project"]["version"]

    def image(name: str) -> str:
        entry = values[name]
        return f"{entry['repository']}:{entry['tag'] or chart['appVersion']}"

    assert chart["appVersion"] == version
    assert image("pipeline") == f"{images.PIPELINE_REPOSITORY}:{version}"
    assert image("nsq") == images.NSQ
    assert image("elasticsearch") == images.ELASTICSEARCH
    assert image("kibana") == images.KIBANA
    assert image("operator").endswith(f":{version}")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param({"operator.workers": "0"}, "at '/operator/workers'", id="workers"),
        pytest.param({"crds.instal": "true"}, "'instal' not allowed", id="typo"),
        pytest.param({"watchNamespaces": "{Dev_1}"}, "at '/watchNamespaces/0'", id="namespace"),
        pytest.param({"images.pullPolicy": "Sometimes"}, "at '/images/pullPolicy'", id="policy"),
    ],
)
def test_values_schema_refuses_bad_values(
    helm: pathlib.Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(charting.HelmError) as failure:
        charting.template(helm, values)

    assert message in failure.value.stderr


def test_notes_print_the_next_commands(helm: pathlib.Path) -> None:
    out = charting.run(
        helm,
        "install",
        "spmo",
        str(charting.CHART),
        "--dry-run=client",
        "--namespace",
        "snowplow-operator",
        "--set",
        "watchNamespaces={dev}",
    )

    notes = out[out.index("NOTES:") :]
    assert "watching namespace(s) dev." in notes
    assert "rollout status deployment/spmo-snowplow-mini-operator" in notes
    assert "kubectl -n dev wait --for=condition=Ready snowplowmini/demo" in notes
    assert "port-forward service/demo-collector 8080:8080" in notes
    assert "port-forward service/demo-kibana 5601:5601" in notes
