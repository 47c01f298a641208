"""Rendering: one SnowplowMini in, the manifests of all its children out. Pure.

Children, each named ``<mini>-<suffix>`` and owned by the SnowplowMini:

* nsq: Deployment and Service ``-nsq`` (nsqd, and nsqadmin beside it when enabled). There is
  no nsqlookupd: every producer and consumer talks to the one nsqd directly.
* elasticsearch: Deployment and Service ``-elasticsearch`` (single node; emptyDir, or the
  PersistentVolumeClaim ``-elasticsearch-data`` when ``storage.persistent``).
* kibana (when enabled): Deployment and Service ``-kibana`` and the Job
  ``-kibana-data-views`` that creates the ``good`` and ``bad`` data views.
* collector: ConfigMap, Deployment and Service ``-collector``.
* enrich: ConfigMaps ``-enrich`` and ``-enrichments``, Secret ``-iglu-resolver``, Deployment.
* sink-good and sink-bad: ConfigMap and Deployment each.

Each pipeline Deployment's pod template carries the hash of exactly the ConfigMaps and Secrets
it reads, so a change to one component's configuration rolls that component only.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from snowplow_operator import hashing, images, naming, pipeline_env, podspecs, resolvers, specs

NSQD_TCP_PORT = 4150
NSQD_HTTP_PORT = 4151
NSQADMIN_PORT = 4171
ELASTICSEARCH_PORT = 9200
KIBANA_PORT = 5601
DATA_VIEWS_SUFFIX = "kibana-data-views"
# The time field of each index, as the sink's index templates map it.
DATA_VIEW_TIME_FIELDS = {"good": "collector_tstamp", "bad": "data.failure.timestamp"}

DEFAULTS = {
    naming.NSQ: podspecs.Amounts("25m", "32Mi", None, "128Mi"),
    naming.KIBANA: podspecs.Amounts("100m", "512Mi", None, "1Gi"),
    naming.COLLECTOR: podspecs.Amounts("50m", "64Mi", None, "256Mi"),
    naming.ENRICH: podspecs.Amounts("100m", "128Mi", None, "512Mi"),
    "sinks": podspecs.Amounts("25m", "64Mi", None, "256Mi"),
}
NSQADMIN_AMOUNTS = podspecs.Amounts("10m", "16Mi", None, "64Mi")
JOB_AMOUNTS = podspecs.Amounts("10m", "32Mi", None, "128Mi")


@dataclasses.dataclass(frozen=True)
class Mini:
    """The identity of the parent SnowplowMini and its parsed spec."""

    name: str
    namespace: str
    uid: str
    spec: specs.MiniSpec
    images: images.Defaults = dataclasses.field(default_factory=images.Defaults)


def render(mini: Mini, *, api_keys: Mapping[str, str]) -> list[dict[str, Any]]:
    """All children of ``mini`` in apply order: configuration before the workloads using it.

    ``api_keys`` maps an Iglu registry name to the API key read from its Secret.
    """
    return [
        *render_nsq(mini),
        *render_elasticsearch(mini),
        *(render_kibana(mini) if mini.spec.kibana.enabled else []),
        *render_collector(mini),
        *render_enrich(mini, api_keys=api_keys),
        *render_sink(mini, "good"),
        *render_sink(mini, "bad"),
    ]


def workload_names(mini: Mini) -> dict[str, str]:
    """The Deployment of each enabled component, by component."""
    components = [c for c in naming.COMPONENTS if c != naming.KIBANA or mini.spec.kibana.enabled]
    return {component: naming.child_name(mini.name, component) for component in components}


def service_host(mini: Mini, component: str) -> str:
    return f"{naming.child_name(mini.name, component)}.{mini.namespace}.svc"


def endpoints(mini: Mini) -> dict[str, str]:
    """In-cluster URLs of the mini's services, for ``status.endpoints``."""
    urls = {
        "collector": f"http://{service_host(mini, naming.COLLECTOR)}:{pipeline_env.COLLECTOR_PORT}",
        "elasticsearch": f"http://{service_host(mini, naming.ELASTICSEARCH)}:{ELASTICSEARCH_PORT}",
    }
    if mini.spec.kibana.enabled:
        urls["kibana"] = f"http://{service_host(mini, naming.KIBANA)}:{KIBANA_PORT}"
    if mini.spec.nsq.admin.enabled:
        urls["nsqadmin"] = f"http://{service_host(mini, naming.NSQ)}:{NSQADMIN_PORT}"
    return urls


def wiring(mini: Mini) -> pipeline_env.Wiring:
    nsqd = service_host(mini, naming.NSQ)
    return pipeline_env.Wiring(
        nsqd_tcp_address=f"{nsqd}:{NSQD_TCP_PORT}",
        nsqd_http_address=f"{nsqd}:{NSQD_HTTP_PORT}",
        elasticsearch_url=f"http://{service_host(mini, naming.ELASTICSEARCH)}:{ELASTICSEARCH_PORT}",
    )


# --- nsq ---------------------------------------------------------------------------------


def render_nsq(mini: Mini) -> list[dict[str, Any]]:
    spec = mini.spec.nsq
    name = naming.child_name(mini.name, naming.NSQ)
    nsqd = {
        "name": "nsqd",
        "image": spec.image or mini.images.nsq,
        "args": [
            "/nsqd",
            "--data-path=/data",
            f"--broadcast-address={service_host(mini, naming.NSQ)}",
            f"--tcp-address=0.0.0.0:{NSQD_TCP_PORT}",
            f"--http-address=0.0.0.0:{NSQD_HTTP_PORT}",
        ],
        "ports": [
            {"name": "tcp", "containerPort": NSQD_TCP_PORT},
            {"name": "http", "containerPort": NSQD_HTTP_PORT},
        ],
        "readinessProbe": podspecs.http_probe("/ping", "http"),
        "resources": podspecs.resources(spec.resources, DEFAULTS[naming.NSQ]),
        "securityContext": podspecs.container_security(read_only_root=True),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    containers = [nsqd]
    ports = [_port("tcp", NSQD_TCP_PORT), _port("http", NSQD_HTTP_PORT)]
    if spec.admin.enabled:
        containers.append(_nsqadmin(spec, default_image=mini.images.nsq))
        ports.append(_port("admin", NSQADMIN_PORT))
    pod = _pod(containers, uid=podspecs.NSQ_UID, volumes=[_empty_dir("data")])
    return [
        _deployment(mini, naming.NSQ, name=name, pod=pod, recreate=True),
        _service(mini, naming.NSQ, name=name, ports=ports),
    ]


def _nsqadmin(spec: specs.Nsq, *, default_image: str) -> dict[str, Any]:
    return {
        "name": "nsqadmin",
        "image": spec.image or default_image,
        "args": [
            "/nsqadmin",
            f"--nsqd-http-address=127.0.0.1:{NSQD_HTTP_PORT}",
            f"--http-address=0.0.0.0:{NSQADMIN_PORT}",
        ],
        "ports": [{"name": "admin", "containerPort": NSQADMIN_PORT}],
        "readinessProbe": podspecs.http_probe("/ping", "admin"),
        "resources": podspecs.resources(specs.Resources(), NSQADMIN_AMOUNTS),
        "securityContext": podspecs.container_security(read_only_root=True),
    }


# --- elasticsearch -----------------------------------------------------------------------


def render_elasticsearch(mini: Mini) -> list[dict[str, Any]]:
    spec = mini.spec.elasticsearch
    name = naming.child_name(mini.name, naming.ELASTICSEARCH)
    container = {
        "name": "elasticsearch",
        "image": spec.image or mini.images.elasticsearch,
        "env": podspecs.env_list(
            {
                "discovery.type": "single-node",
                "cluster.name": mini.name,
                "xpack.security.enabled": "false",
                # No vm.max_map_count tuning is possible without privileges.
                "node.store.allow_mmap": "false",
                "ES_JAVA_OPTS": f"-Xms{spec.heap} -Xmx{spec.heap}",
            }
        ),
        "ports": [{"name": "http", "containerPort": ELASTICSEARCH_PORT}],
        "readinessProbe": podspecs.http_probe("/_cluster/health?local=true", "http"),
        "resources": podspecs.resources(spec.resources, elasticsearch_amounts(spec.heap)),
        "securityContext": podspecs.container_security(read_only_root=False),
        "volumeMounts": [{"name": "data", "mountPath": "/usr/share/elasticsearch/data"}],
    }
    children: list[dict[str, Any]] = []
    if spec.storage.persistent:
        claim = naming.child_name(mini.name, "elasticsearch-data")
        children.append(_claim(mini, name=claim, storage=spec.storage))
        volume = {"name": "data", "persistentVolumeClaim": {"claimName": claim}}
    else:
        volume = _empty_dir("data")
    pod = _pod([container], uid=podspecs.ELASTIC_UID, volumes=[volume])
    children += [
        _deployment(mini, naming.ELASTICSEARCH, name=name, pod=pod, recreate=True),
        _service(mini, naming.ELASTICSEARCH, name=name, ports=[_port("http", ELASTICSEARCH_PORT)]),
    ]
    return children


def elasticsearch_amounts(heap: str) -> podspecs.Amounts:
    """Memory twice the heap (the JVM's off-heap needs), requested and limited alike."""
    mebibytes = int(heap[:-1]) * (1024 if heap.endswith("g") else 1)
    memory = f"{2 * mebibytes}Mi"
    return podspecs.Amounts("250m", memory, None, memory)


def _claim(mini: Mini, *, name: str, storage: specs.Storage) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class_name:
        spec["storageClassName"] = storage.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(mini, naming.ELASTICSEARCH, name=name),
        "spec": spec,
    }


# --- kibana ------------------------------------------------------------------------------


def render_kibana(mini: Mini) -> list[dict[str, Any]]:
    spec = mini.spec.kibana
    name = naming.child_name(mini.name, naming.KIBANA)
    es_url = f"http://{service_host(mini, naming.ELASTICSEARCH)}:{ELASTICSEARCH_PORT}"
    container = {
        "name": "kibana",
        "image": spec.image or mini.images.kibana,
        "env": podspecs.env_list({"ELASTICSEARCH_HOSTS": es_url, "SERVER_NAME": mini.name}),
        "ports": [{"name": "http", "containerPort": KIBANA_PORT}],
        "readinessProbe": podspecs.http_probe("/api/status", "http"),
        "resources": podspecs.resources(spec.resources, DEFAULTS[naming.KIBANA]),
        "securityContext": podspecs.container_security(read_only_root=False),
    }
    pod = _pod([container], uid=podspecs.ELASTIC_UID)
    return [
        _deployment(mini, naming.KIBANA, name=name, pod=pod),
        _service(mini, naming.KIBANA, name=name, ports=[_port("http", KIBANA_PORT)]),
        render_data_views_job(mini),
    ]


def data_views_script(kibana_url: str) -> str:
    """A shell script that waits for Kibana, then creates (or overwrites) both data views."""
    lines = [
        "set -eu",
        f"until curl -fsS -o /dev/null {kibana_url}/api/status; do sleep 5; done",
    ]
    for index, time_field in DATA_VIEW_TIME_FIELDS.items():
        body = {
            "data_view": {
                "id": index,
                "name": index,
                "title": index,
                "timeFieldName": time_field,
            },
            "override": True,
        }
        lines.append(
            f"curl -fsS -X POST {kibana_url}/api/data_views/data_view"
            " -H 'kbn-xsrf: true' -H 'Content-Type: application/json'"
            f" -d '{json.dumps(body, separators=(',', ':'))}'"
        )
    return "\n".join(lines) + "\n"


def render_data_views_job(mini: Mini) -> dict[str, Any]:
    kibana_url = f"http://{service_host(mini, naming.KIBANA)}:{KIBANA_PORT}"
    container = {
        "name": "data-views",
        "image": mini.spec.kibana.image or mini.images.kibana,
        "command": ["/bin/bash", "-c", data_views_script(kibana_url)],
        "resources": podspecs.resources(specs.Resources(), JOB_AMOUNTS),
        "securityContext": podspecs.container_security(read_only_root=True),
    }
    pod = _pod([container], uid=podspecs.ELASTIC_UID)
    pod["spec"]["restartPolicy"] = "Never"
    # Job pods need no selector labels of ours: the Job controller adds its own.
    pod["metadata"] = {"labels": naming.selector_labels(mini.name, DATA_VIEWS_SUFFIX)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(
            mini, naming.KIBANA, name=naming.child_name(mini.name, DATA_VIEWS_SUFFIX)
        ),
        "spec": {"backoffLimit": 6, "template": pod},
    }


# --- pipeline ----------------------------------------------------------------------------


def render_collector(mini: Mini) -> list[dict[str, Any]]:
    spec = mini.spec.collector
    name = naming.child_name(mini.name, naming.COLLECTOR)
    process = pipeline_env.collector(spec, wiring(mini))
    config = _config_map(mini, naming.COLLECTOR, name=name, data=process.env)
    container = _pipeline_container(
        naming.COLLECTOR,
        default_image=mini.images.pipeline,
        spec=spec,
        process=process,
        env_from=name,
        amounts=DEFAULTS[naming.COLLECTOR],
    )
    container["ports"] = [{"name": "http", "containerPort": pipeline_env.COLLECTOR_PORT}]
    container["readinessProbe"] = podspecs.http_probe("/health", "http")
    pod = _pod([container], uid=podspecs.PIPELINE_UID, volumes=[_empty_dir("tmp")])
    pod["metadata"]["annotations"] = _hash_annotation([config["data"]])
    return [
        config,
        _deployment(mini, naming.COLLECTOR, name=name, pod=pod),
        _service(
            mini, naming.COLLECTOR, name=name, ports=[_port("http", pipeline_env.COLLECTOR_PORT)]
        ),
    ]


def render_enrich(mini: Mini, *, api_keys: Mapping[str, str]) -> list[dict[str, Any]]:
    spec = mini.spec.enrich
    name = naming.child_name(mini.name, naming.ENRICH)
    process = pipeline_env.enrich(wiring(mini))
    env = _config_map(mini, naming.ENRICH, name=name, data=process.env)
    enrichments = _config_map(
        mini,
        naming.ENRICH,
        name=naming.child_name(mini.name, "enrichments"),
        data={f"{e.name}.json": _json(e.config) for e in spec.enrichments},
    )
    resolver = _secret(
        mini,
        naming.ENRICH,
        name=naming.child_name(mini.name, "iglu-resolver"),
        data={pipeline_env.RESOLVER_FILE: _json(resolvers.render(mini.spec.iglu, api_keys))},
    )
    container = _pipeline_container(
        naming.ENRICH,
        default_image=mini.images.pipeline,
        spec=spec,
        process=process,
        env_from=name,
        amounts=DEFAULTS[naming.ENRICH],
    )
    container["ports"] = [{"name": "http", "containerPort": pipeline_env.ENRICH_HEALTH_PORT}]
    container["readinessProbe"] = podspecs.http_probe("/health", "http")
    container["volumeMounts"] += [
        {"name": "iglu", "mountPath": pipeline_env.RESOLVER_DIR, "readOnly": True},
        {"name": "enrichments", "mountPath": pipeline_env.ENRICHMENTS_DIR, "readOnly": True},
    ]
    volumes = [
        _empty_dir("tmp"),
        {"name": "iglu", "secret": {"secretName": resolver["metadata"]["name"]}},
        {"name": "enrichments", "configMap": {"name": enrichments["metadata"]["name"]}},
    ]
    pod = _pod([container], uid=podspecs.PIPELINE_UID, volumes=volumes)
    hashed = [env["data"], enrichments["data"], resolver["data"]]
    pod["metadata"]["annotations"] = _hash_annotation(hashed)
    return [env, enrichments, resolver, _deployment(mini, naming.ENRICH, name=name, pod=pod)]


def render_sink(mini: Mini, kind: pipeline_env.SinkKind) -> list[dict[str, Any]]:
    component = naming.SINK_GOOD if kind == "good" else naming.SINK_BAD
    name = naming.child_name(mini.name, component)
    process = pipeline_env.sink(kind, wiring(mini))
    config = _config_map(mini, component, name=name, data=process.env)
    container = _pipeline_container(
        component,
        default_image=mini.images.pipeline,
        spec=mini.spec.sinks,
        process=process,
        env_from=name,
        amounts=DEFAULTS["sinks"],
    )
    container["ports"] = [{"name": "http", "containerPort": pipeline_env.SINK_HEALTH_PORT}]
    container["readinessProbe"] = podspecs.http_probe("/health", "http")
    pod = _pod([container], uid=podspecs.PIPELINE_UID, volumes=[_empty_dir("tmp")])
    pod["metadata"]["annotations"] = _hash_annotation([config["data"]])
    return [config, _deployment(mini, component, name=name, pod=pod)]


def _pipeline_container(
    component: str,
    *,
    default_image: str,
    spec: specs.Component,
    process: pipeline_env.Process,
    env_from: str,
    amounts: podspecs.Amounts,
) -> dict[str, Any]:
    return {
        "name": component,
        "image": spec.image or default_image,
        "args": list(process.args),
        "envFrom": [{"configMapRef": {"name": env_from}}],
        "resources": podspecs.resources(spec.resources, amounts),
        "securityContext": podspecs.container_security(read_only_root=True),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


# --- shared shapes -----------------------------------------------------------------------


def _metadata(mini: Mini, component: str, *, name: str) -> dict[str, Any]:
    spec = mini.spec
    return {
        "name": name,
        "namespace": mini.namespace,
        "labels": naming.common_labels(
            mini.name,
            component,
            owner=spec.owner,
            branch=spec.source.branch,
            pull_request=spec.source.pull_request,
        ),
        "ownerReferences": [podspecs.owner_reference(name=mini.name, uid=mini.uid)],
    }


def _pod(
    containers: list[dict[str, Any]], *, uid: int, volumes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": podspecs.pod_security(uid),
        "containers": containers,
    }
    if volumes:
        spec["volumes"] = volumes
    return {"metadata": {}, "spec": spec}


def _deployment(
    mini: Mini, component: str, *, name: str, pod: dict[str, Any], recreate: bool = False
) -> dict[str, Any]:
    selector = naming.selector_labels(mini.name, component)
    pod["metadata"]["labels"] = selector
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(mini, component, name=name),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "Recreate" if recreate else "RollingUpdate"},
            "template": pod,
        },
    }


def _service(
    mini: Mini, component: str, *, name: str, ports: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(mini, component, name=name),
        "spec": {
            "type": "ClusterIP",
            "selector": naming.selector_labels(mini.name, component),
            "ports": ports,
        },
    }


def _config_map(mini: Mini, component: str, *, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(mini, component, name=name),
        "data": data,
    }


def _secret(mini: Mini, component: str, *, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(mini, component, name=name),
        "type": "Opaque",
        "data": {
            key: base64.b64encode(value.encode()).decode("ascii") for key, value in data.items()
        },
    }


def _port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}


def _empty_dir(name: str) -> dict[str, Any]:
    return {"name": name, "emptyDir": {}}


def _hash_annotation(configs: list[Mapping[str, Any]]) -> dict[str, str]:
    return {naming.CONFIG_HASH_ANNOTATION: hashing.config_hash(configs)}


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"
