"""Rendering a SnowplowMini into its children: names, ownership, specs and config hashes."""

from __future__ import annotations

import base64
import json
from typing import Any

from snowplow_operator import images, naming, rendering, specs
from snowplow_pipeline.iglu import configs

NAMESPACE = "team-a"


def render(spec: dict[str, Any] | None = None, **api_keys: str) -> dict[tuple[str, str], dict]:
    mini = rendering.Mini("dev", NAMESPACE, "uid-1", specs.parse(spec or {}))
    return {
        (m["kind"], m["metadata"]["name"]): m for m in rendering.render(mini, api_keys=api_keys)
    }


def hashes(children: dict[tuple[str, str], dict]) -> dict[str, str]:
    return {
        name: m["spec"]["template"]["metadata"]
        .get("annotations", {})
        .get(naming.CONFIG_HASH_ANNOTATION, "")
        for (kind, name), m in children.items()
        if kind == "Deployment"
    }


def test_default_mini_has_the_documented_children() -> None:
    children = render()

    assert sorted(children) == [
        ("ConfigMap", "dev-collector"),
        ("ConfigMap", "dev-enrich"),
        ("ConfigMap", "dev-enrichments"),
        ("ConfigMap", "dev-sink-bad"),
        ("ConfigMap", "dev-sink-good"),
        ("Deployment", "dev-collector"),
        ("Deployment", "dev-elasticsearch"),
        ("Deployment", "dev-enrich"),
        ("Deployment", "dev-kibana"),
        ("Deployment", "dev-nsq"),
        ("Deployment", "dev-sink-bad"),
        ("Deployment", "dev-sink-good"),
        ("Job", "dev-kibana-data-views"),
        ("Secret", "dev-iglu-resolver"),
        ("Service", "dev-collector"),
        ("Service", "dev-elasticsearch"),
        ("Service", "dev-kibana"),
        ("Service", "dev-nsq"),
    ]


def test_every_child_is_owned_by_the_mini_and_labelled() -> None:
    children = render(
        {"owner": "alice", "source": {"branch": "feature/Big_Thing", "pullRequest": 7}}
    )

    for manifest in children.values():
        meta = manifest["metadata"]
        assert meta["namespace"] == NAMESPACE
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "snowplowmini.dev/v1alpha1",
                "kind": "SnowplowMini",
                "name": "dev",
                "uid": "uid-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "snowplow-mini-operator"
        assert meta["labels"]["app.kubernetes.io/instance"] == "dev"
        assert meta["labels"]["snowplowmini.dev/owner"] == "alice"
        assert meta["labels"]["snowplowmini.dev/branch-slug"] == "feature-big-thing"
        assert meta["labels"]["snowplowmini.dev/pull-request"] == "7"


def test_collector_deployment_is_rendered_exactly() -> None:
    deployment = render()[("Deployment", "dev-collector")]

    selector = {
        "app.kubernetes.io/name": "snowplow-mini",
        "app.kubernetes.io/instance": "dev",
        "app.kubernetes.io/component": "collector",
    }
    assert deployment["spec"]["selector"] == {"matchLabels": selector}
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"] == selector
    assert pod["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["containers"] == [
        {
            "name": "collector",
            "image": images.pipeline(),
            "args": ["snowplow-mini", "--log-format", "json", "collector"],
            "envFrom": [{"configMapRef": {"name": "dev-collector"}}],
            "resources": {
                "requests": {"cpu": "50m", "memory": "64Mi"},
                "limits": {"memory": "256Mi"},
            },
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
            },
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {
                "httpGet": {"path": "/health", "port": "http"},
                "periodSeconds": 10,
                "timeoutSeconds": 5,
                "failureThreshold": 3,
            },
        }
    ]


def test_every_container_meets_the_restricted_pod_security_standard() -> None:
    children = render({"elasticsearch": {"storage": {"persistent": True}}})

    workloads = [m for m in children.values() if m["kind"] in ("Deployment", "Job")]
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
        for volume in pod.get("volumes", []):
            assert set(volume) - {"name"} <= {
                "emptyDir",
                "configMap",
                "secret",
                "persistentVolumeClaim",
            }


def test_spec_resources_override_the_defaults_one_amount_at_a_time() -> None:
    spec = {"enrich": {"resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}}}

    container = render(spec)[("Deployment", "dev-enrich")]["spec"]["template"]["spec"][
        "containers"
    ][0]

    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "128Mi"},
        "limits": {"cpu": "2", "memory": "512Mi"},
    }


def test_elasticsearch_heap_sets_java_options_and_memory() -> None:
    deployment = render({"elasticsearch": {"heap": "1g"}})[("Deployment", "dev-elasticsearch")]

    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ES_JAVA_OPTS"] == "-Xms1g -Xmx1g"
    assert env["discovery.type"] == "single-node"
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "2048Mi"},
        "limits": {"memory": "2048Mi"},
    }
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_persistent_elasticsearch_gets_a_claim() -> None:
    spec = {
        "elasticsearch": {
            "storage": {"persistent": True, "size": "20Gi", "storageClassName": "fast"}
        }
    }

    children = render(spec)

    claim = children[("PersistentVolumeClaim", "dev-elasticsearch-data")]
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "20Gi"}},
        "storageClassName": "fast",
    }
    volumes = children[("Deployment", "dev-elasticsearch")]["spec"]["template"]["spec"]["volumes"]
    assert volumes == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "dev-elasticsearch-data"}}
    ]


def test_disabled_kibana_and_nsqadmin_are_not_rendered() -> None:
    children = render({"kibana": {"enabled": False}, "nsq": {"admin": {"enabled": False}}})

    assert not [key for key in children if "kibana" in key[1]]
    nsq = children[("Deployment", "dev-nsq")]["spec"]["template"]["spec"]
    assert [c["name"] for c in nsq["containers"]] == ["nsqd"]
    assert [p["name"] for p in children[("Service", "dev-nsq")]["spec"]["ports"]] == ["tcp", "http"]


def test_data_views_job_creates_good_and_bad() -> None:
    job = render()[("Job", "dev-kibana-data-views")]

    script = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert "until curl -fsS -o /dev/null http://dev-kibana.team-a.svc:5601/api/status" in script
    assert '"id":"good","name":"good","title":"good","timeFieldName":"collector_tstamp"' in script
    assert (
        '"id":"bad","name":"bad","title":"bad","timeFieldName":"data.failure.timestamp"' in script
    )
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_changing_collector_settings_changes_only_the_collector_hash() -> None:
    before = hashes(render())

    after = hashes(render({"collector": {"cookie": {"name": "sp2"}}}))

    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == ["dev-collector"]


def test_changing_iglu_registries_changes_only_the_enrich_hash() -> None:
    before = hashes(render())

    after = hashes(
        render({"iglu": {"registries": [{"name": "acme", "uri": "https://iglu.acme.test"}]}})
    )

    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == ["dev-enrich"]


def test_rendering_is_deterministic() -> None:
    assert render({"owner": "bob"}) == render({"owner": "bob"})


def test_resolver_holds_api_keys_and_parses_as_a_resolver_config() -> None:
    spec = {
        "iglu": {
            "registries": [
                {
                    "name": "acme",
                    "uri": "https://iglu.acme.test/api",
                    "priority": 5,
                    "vendorPrefixes": ["com.acme"],
                    "apiKeySecretRef": {"name": "acme-iglu"},
                }
            ]
        }
    }

    secret = render(spec, acme="k-123")[("Secret", "dev-iglu-resolver")]

    document = json.loads(base64.b64decode(secret["data"]["resolver.json"]))
    parsed = configs.parse(document)
    assert [(r.name, r.priority, r.connection) for r in parsed.repositories] == [
        ("Iglu Central", 0.0, configs.HttpConnection(uri="http://iglucentral.com")),
        ("acme", 5.0, configs.HttpConnection(uri="https://iglu.acme.test/api", apikey="k-123")),
    ]


def test_enrichments_become_one_file_each() -> None:
    config = {
        "schema": "iglu:com.snowplowanalytics.snowplow/ua_parser_config/jsonschema/1-0-0",
        "data": {
            "enabled": True,
            "name": "ua_parser_config",
            "vendor": "com.snowplowanalytics.snowplow",
        },
    }

    data = render({"enrich": {"enrichments": [{"name": "ua-parser", "config": config}]}})[
        ("ConfigMap", "dev-enrichments")
    ]["data"]

    assert list(data) == ["ua-parser.json"]
    assert json.loads(data["ua-parser.json"]) == config


def test_endpoints_name_the_in_cluster_services() -> None:
    mini = rendering.Mini("dev", NAMESPACE, "uid-1", specs.parse({}))

    assert rendering.endpoints(mini) == {
        "collector": "http://dev-collector.team-a.svc:8080",
        "elasticsearch": "http://dev-elasticsearch.team-a.svc:9200",
        "kibana": "http://dev-kibana.team-a.svc:5601",
        "nsqadmin": "http://dev-nsq.team-a.svc:4171",
    }


def images_by_container(manifests: list[dict[str, Any]]) -> dict[str, str]:
    found = {}
    for manifest in manifests:
        if manifest["kind"] in ("Deployment", "Job"):
            for container in manifest["spec"]["template"]["spec"]["containers"]:
                found[container["name"]] = container["image"]
    return found


def test_operator_wide_default_images_apply_where_the_spec_pins_none() -> None:
    defaults = images.Defaults(
        pipeline="registry.test/pipeline:7",
        nsq="registry.test/nsq:1",
        elasticsearch="registry.test/es:8",
        kibana="registry.test/kb:8",
    )
    spec = specs.parse({"enrich": {"image": "registry.test/my-enrich:2"}})
    mini = rendering.Mini("dev", NAMESPACE, "uid-1", spec, images=defaults)

    found = images_by_container(rendering.render(mini, api_keys={}))

    assert found["collector"] == "registry.test/pipeline:7"
    assert found["enrich"] == "registry.test/my-enrich:2"
    assert found["nsqd"] == found["nsqadmin"] == "registry.test/nsq:1"
    assert found["elasticsearch"] == "registry.test/es:8"
    assert found["kibana"] == "registry.test/kb:8"


def test_operator_settings_replace_only_the_images_they_name() -> None:
    from snowplow_operator import running

    settings = running.OperatorSettings(nsq_image="registry.test/nsq:1")

    assert settings.default_images() == images.Defaults(nsq="registry.test/nsq:1")
