"""Smoke tests of the real components: each proves one property the project relies on."""

from __future__ import annotations

import asyncio
import json
import pathlib
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import ansq
import elasticsearch as es
import kubernetes
import pytest
import yaml

from tests.components import layout
from tests.components.es_server import ElasticsearchServer
from tests.components.kube_cluster import KubeCluster
from tests.components.nsq_server import NsqdServer
from tests.components.processes import wait_until

CHART = pathlib.Path(__file__).with_name("data") / "smoke-chart"
WAIT_SECONDS = 60.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def eventually(fetch: Callable[[], Any], accept: Callable[[Any], bool], what: str) -> Any:
    """Poll ``fetch`` until ``accept`` holds for its result; return that result."""
    seen: list[Any] = []

    def check() -> bool:
        seen.append(fetch())
        return accept(seen[-1])

    wait_until(check, timeout_seconds=WAIT_SECONDS, what=what)
    return seen[-1]


# --- Kubernetes -----------------------------------------------------------------------------------


@pytest.fixture
def api(kube_cluster: KubeCluster) -> Iterator[kubernetes.client.ApiClient]:
    with kube_cluster.api_client() as client:
        yield client


@pytest.fixture
def namespace(api: kubernetes.client.ApiClient) -> Iterator[str]:
    name = unique("smoke")
    core = kubernetes.client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.mark.kubernetes
def test_apiserver_reports_the_pinned_version(
    kube_cluster: KubeCluster, api: kubernetes.client.ApiClient
) -> None:
    info = kubernetes.client.VersionApi(api).get_code()

    assert info.git_version == kube_cluster.version == "v1.36.3"
    assert (info.major, info.minor) == ("1", "36")
    assert info.git_tree_state == "clean"


@pytest.mark.kubernetes
def test_rbac_forbids_a_user_without_bindings(kube_cluster: KubeCluster) -> None:
    kubeconfig = kube_cluster.kubeconfig_for("jane", groups=("developers",))

    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    with client, pytest.raises(kubernetes.client.ApiException) as caught:
        kubernetes.client.CoreV1Api(client).list_namespaced_pod("default")

    assert caught.value.status == 403
    assert 'User "jane" cannot list resource "pods"' in json.loads(caught.value.body)["message"]


WIDGET_CRD_NAME = "widgets.smoke.snowplow-mini.test"
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": WIDGET_CRD_NAME},
    "spec": {
        "group": "smoke.snowplow-mini.test",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["replicas"],
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 1},
                                    "colour": {"type": "string", "enum": ["red", "blue"]},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def widget_crd(api: kubernetes.client.ApiClient) -> Iterator[str]:
    extensions = kubernetes.client.ApiextensionsV1Api(api)
    name = WIDGET_CRD_NAME
    extensions.create_custom_resource_definition(WIDGET_CRD)
    eventually(
        lambda: extensions.read_custom_resource_definition(name).status.conditions or [],
        lambda conditions: any(c.type == "Established" and c.status == "True" for c in conditions),
        what=f"CRD {name} Established",
    )
    yield name
    extensions.delete_custom_resource_definition(name)


@pytest.mark.kubernetes
def test_crd_schema_rejects_invalid_object_naming_the_field(
    api: kubernetes.client.ApiClient, widget_crd: str, namespace: str
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api)

    def create(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": "smoke.snowplow-mini.test/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": spec,
        }
        created: dict[str, Any] = custom.create_namespaced_custom_object(
            "smoke.snowplow-mini.test", "v1", namespace, "widgets", body
        )
        return created

    accepted = create("good", {"replicas": 2, "colour": "red"})
    with pytest.raises(kubernetes.client.ApiException) as caught:
        create("bad", {"replicas": "three", "colour": "green"})

    assert accepted["spec"] == {"replicas": 2, "colour": "red"}
    assert caught.value.status == 422
    causes = json.loads(caught.value.body)["details"]["causes"]
    assert sorted(c["field"] for c in causes) == ["spec.colour", "spec.replicas"]
    assert any('must be of type integer: "string"' in c["message"] for c in causes)


@pytest.mark.kubernetes
def test_deployment_becomes_available_on_kwok_nodes(
    kube_cluster: KubeCluster, api: kubernetes.client.ApiClient, namespace: str
) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    labels = {"app": "smoke"}
    deployment = {
        "metadata": {"name": "smoke"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "example.invalid/smoke:1"}]},
            },
        },
    }

    apps.create_namespaced_deployment(namespace, deployment)
    status = eventually(
        lambda: apps.read_namespaced_deployment_status("smoke", namespace).status,
        lambda s: (
            s.available_replicas == 2
            and any(c.type == "Available" and c.status == "True" for c in s.conditions or [])
        ),
        what="Deployment smoke Available with 2 replicas",
    )

    assert status.ready_replicas == 2
    pods = kubernetes.client.CoreV1Api(api).list_namespaced_pod(namespace).items
    assert len(pods) == 2
    assert {p.status.phase for p in pods} == {"Running"}
    assert {p.spec.node_name for p in pods} <= set(kube_cluster.node_names)


@pytest.mark.kubernetes
def test_deleting_owner_garbage_collects_its_child(
    api: kubernetes.client.ApiClient, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
    }
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "child", "ownerReferences": [reference]}}
    )

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    remaining = eventually(
        lambda: [s.metadata.name for s in core.list_namespaced_secret(namespace).items],
        lambda names: "child" not in names,
        what="secret child garbage-collected",
    )
    assert remaining == []


# --- NSQ ------------------------------------------------------------------------------------------


def http_post(url: str, body: bytes = b"") -> bytes:
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def create_channel(server: NsqdServer, topic: str, channel: str) -> None:
    """Create the topic and the channel first, so nothing published is held back."""
    http_post(f"{server.http_url}/topic/create?topic={topic}")
    http_post(f"{server.http_url}/channel/create?topic={topic}&channel={channel}")


async def consume_one(server: NsqdServer, topic: str, channel: str) -> bytes:
    """Read one message over TCP with ansq, FIN it, and return its body."""
    reader = await ansq.create_reader(
        topic=topic, channel=channel, nsqd_tcp_addresses=[server.tcp_address]
    )
    try:
        message = await asyncio.wait_for(reader.wait_for_message(), timeout=WAIT_SECONDS)
        assert message is not None
        await message.fin()
        return bytes(message.body)
    finally:
        await reader.close()


@pytest.mark.nsq
async def test_message_goes_from_http_publisher_to_tcp_consumer(nsqd: NsqdServer) -> None:
    topic, channel = unique("smoke"), "tests"
    create_channel(nsqd, topic, channel)

    answer = http_post(f"{nsqd.http_url}/pub?topic={topic}", b'{"event":"page_view"}')
    body = await consume_one(nsqd, topic, channel)

    assert answer == b"OK"
    assert body == b'{"event":"page_view"}'


@pytest.mark.nsq
async def test_nsqd_restart_keeps_ports_and_unconsumed_messages(fresh_nsqd: NsqdServer) -> None:
    topic, channel = unique("smoke"), "tests"
    create_channel(fresh_nsqd, topic, channel)
    http_post(f"{fresh_nsqd.http_url}/pub?topic={topic}", b"kept across restart")
    tcp_before = fresh_nsqd.tcp_address

    fresh_nsqd.restart()
    body = await consume_one(fresh_nsqd, topic, channel)

    assert fresh_nsqd.tcp_address == tcp_before
    assert body == b"kept across restart"


# --- Elasticsearch --------------------------------------------------------------------------------


@pytest.mark.elasticsearch
def test_document_is_indexed_and_found(
    elasticsearch: ElasticsearchServer, component_versions: layout.Versions
) -> None:
    client = es.Elasticsearch(elasticsearch.url, request_timeout=30)
    index = unique("smoke")

    client.index(
        index=index, id="e1", document={"event": "page_view", "app_id": "shop"}, refresh="wait_for"
    )
    found = client.search(index=index, query={"match": {"app_id": "shop"}})
    nodes = client.nodes.info(node_id="_local")

    assert found["hits"]["total"]["value"] == 1
    assert found["hits"]["hits"][0]["_id"] == "e1"
    assert found["hits"]["hits"][0]["_source"] == {"event": "page_view", "app_id": "shop"}
    versions = {node["version"] for node in nodes["nodes"].values()}
    assert versions == {component_versions.elasticsearch}
    assert es.__versionstr__.split(".")[0] == component_versions.elasticsearch.split(".")[0]


@pytest.mark.elasticsearch
def test_elasticsearch_restart_keeps_port_and_data(elasticsearch: ElasticsearchServer) -> None:
    client = es.Elasticsearch(elasticsearch.url, request_timeout=30)
    index = unique("smoke")
    client.index(index=index, id="kept", document={"n": 1}, refresh="wait_for")
    url_before = elasticsearch.url

    elasticsearch.restart()
    document = client.get(index=index, id="kept")

    assert elasticsearch.url == url_before
    assert document["_source"] == {"n": 1}


# --- Helm -----------------------------------------------------------------------------------------


def run_helm(helm: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.helm
def test_helm_is_the_pinned_version(
    helm: pathlib.Path, component_versions: layout.Versions
) -> None:
    done = run_helm(helm, "version", "--template={{.Version}}")

    assert done.returncode == 0, done.stderr
    assert done.stdout == component_versions.helm == "v4.3.2"


@pytest.mark.helm
def test_helm_template_renders_the_chart(helm: pathlib.Path) -> None:
    done = run_helm(
        helm,
        "template",
        "demo",
        str(CHART),
        "--set",
        "greeting=hi there",
        "--kube-version",
        "v1.36.3",
    )

    assert done.returncode == 0, done.stderr
    documents = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert documents == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "demo-smoke",
                "labels": {
                    "app.kubernetes.io/name": "smoke",
                    "app.kubernetes.io/instance": "demo",
                    "helm.sh/chart": "smoke-0.1.0",
                },
            },
            "data": {"greeting": "hi there", "replicas": "1", "kubeMinor": "36"},
        }
    ]


@pytest.mark.helm
def test_helm_refuses_a_kube_version_outside_the_chart_constraint(helm: pathlib.Path) -> None:
    done = run_helm(helm, "template", "demo", str(CHART), "--kube-version", "v1.29.0")

    assert done.returncode != 0
    assert "chart requires kubeVersion: >=1.30.0-0 which is incompatible with" in done.stderr


@pytest.mark.helm
@pytest.mark.kubernetes
def test_helm_installs_the_chart_into_the_cluster(
    helm: pathlib.Path, kube_cluster: KubeCluster, api: kubernetes.client.ApiClient
) -> None:
    namespace = unique("helm")

    done = run_helm(
        helm,
        "install",
        "demo",
        str(CHART),
        "--kubeconfig",
        str(kube_cluster.kubeconfig),
        "--namespace",
        namespace,
        "--create-namespace",
    )

    assert done.returncode == 0, done.stderr
    config_map = kubernetes.client.CoreV1Api(api).read_namespaced_config_map(
        "demo-smoke", namespace
    )
    assert config_map.data == {"greeting": "hello", "replicas": "1", "kubeMinor": "36"}
    kubernetes.client.CoreV1Api(api).delete_namespace(namespace)
