"""The pipeline exactly as the operator renders it, run as real processes, carries an event.

No container runs in the kwok cluster, so this test plays the kubelet and the cluster DNS for
the rendered manifests: it starts each pipeline Deployment's container ``args`` with the
environment of the ConfigMap named in its ``envFrom``, writes the mounted ConfigMaps and
Secrets to files where the pod would see them, and points the in-cluster service names at a
real nsqd and Elasticsearch on loopback. Only those substitutions differ from the pod: every
other variable, every argument and every file's content is the rendered one. A tracker event
sent to the collector must then arrive in the ``good`` index.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
from snowplow_tracker import Emitter, PageView, Subject, Tracker

from snowplow_operator import pipeline_env, rendering, specs
from tests.components.es_server import ElasticsearchServer
from tests.components.nsq_server import NsqdServer
from tests.components.processes import ManagedProcess, free_port, wait_until
from tests.operator import cluster

pytestmark = [pytest.mark.nsq, pytest.mark.elasticsearch, pytest.mark.tracker]

NAMESPACE = "ns"
BIN = pathlib.Path(sys.executable).parent
Object = dict[str, Any]


def render() -> dict[tuple[str, str], Object]:
    # No Iglu Central: the test reaches no other host; core schemas are embedded in enrich.
    spec = specs.parse({"iglu": {"igluCentral": False}})
    mini = rendering.Mini("dev", NAMESPACE, "uid-1", spec)
    return {(m["kind"], m["metadata"]["name"]): m for m in rendering.render(mini, api_keys={})}


def mount(children: dict[tuple[str, str], Object], pod: Object, root: pathlib.Path) -> None:
    """Write the pod's ConfigMap and Secret volumes under ``root`` as the kubelet would."""
    container = pod["containers"][0]
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            files = children[("ConfigMap", volume["configMap"]["name"])]["data"]
        elif "secret" in volume:
            data = children[("Secret", volume["secret"]["secretName"])]["data"]
            files = {key: base64.b64decode(value).decode() for key, value in data.items()}
        else:
            continue
        (mount_path,) = [
            m["mountPath"] for m in container["volumeMounts"] if m["name"] == volume["name"]
        ]
        folder = root / mount_path.lstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (folder / name).write_text(text)


def environment(
    children: dict[tuple[str, str], Object],
    container: Object,
    *,
    root: pathlib.Path,
    nsqd: NsqdServer,
    elasticsearch: ElasticsearchServer,
    port: int,
) -> dict[str, str]:
    """The rendered variables, with service names, paths and the listening port substituted."""
    (source,) = container["envFrom"]
    rendered = children[("ConfigMap", source["configMapRef"]["name"])]["data"]
    swaps = {
        f"dev-nsq.{NAMESPACE}.svc:4150": nsqd.tcp_address,
        f"dev-nsq.{NAMESPACE}.svc:4151": nsqd.http_address,
        f"http://dev-elasticsearch.{NAMESPACE}.svc:9200": elasticsearch.url,
        pipeline_env.CONFIG_ROOT: str(root / pipeline_env.CONFIG_ROOT.lstrip("/")),
    }
    env = {}
    for name, value in rendered.items():
        for old, new in swaps.items():
            value = value.replace(old, new)
        env[name] = value
    # Listen on loopback only, on a free port, where the pod listens on all its addresses.
    prefix = next(name for name in rendered if name.endswith("_HOST")).removesuffix("HOST")
    env[prefix + "HOST"] = "127.0.0.1"
    env[prefix + "PORT"] = str(port)
    return env


def start_component(
    children: dict[tuple[str, str], Object],
    component: str,
    tmp_path: pathlib.Path,
    **servers: Any,
) -> tuple[ManagedProcess, int, Object]:
    pod = children[("Deployment", f"dev-{component}")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    root = tmp_path / component
    mount(children, pod, root)
    port = free_port()
    env = environment(children, container, root=root, port=port, **servers)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SNOWPLOW_")}
    command, *args = container["args"]
    process = ManagedProcess(
        component,
        [str(BIN / command), *args],
        log_path=tmp_path / f"{component}.log",
        env={**inherited, **env},
    )
    process.start()
    return process, port, env


def is_healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
        return response.status == 200


def search_good(elasticsearch: ElasticsearchServer, page_url: str) -> list[Object]:
    query = json.dumps({"query": {"match_phrase": {"page_url": page_url}}}).encode()
    request = urllib.request.Request(
        f"{elasticsearch.url}/good/_search",
        data=query,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())["hits"]["hits"]
    except urllib.error.HTTPError:
        return []


def test_tracker_event_reaches_the_good_index_through_the_rendered_pipeline(
    fresh_nsqd: NsqdServer, fresh_elasticsearch: ElasticsearchServer, tmp_path: pathlib.Path
) -> None:
    children = render()
    servers = {"nsqd": fresh_nsqd, "elasticsearch": fresh_elasticsearch}
    started = []
    try:
        for component in ("sink-good", "sink-bad", "enrich", "collector"):
            process, port, env = start_component(children, component, tmp_path, **servers)
            started.append(process)
            wait_until(
                lambda port=port: is_healthy(port),
                timeout_seconds=60,
                what=f"{component} /health",
                process=process,
            )
        collector_port = port

        emitter = Emitter(f"127.0.0.1:{collector_port}", protocol="http", method="post")
        subject = Subject().set_platform("web")
        tracker = Tracker(namespace="op", emitters=emitter, app_id="rendered", subject=subject)
        tracker.track(PageView(page_url="https://shop.test/rendered", page_title="Rendered"))
        tracker.flush()

        hits = cluster.poll(
            lambda: search_good(fresh_elasticsearch, "https://shop.test/rendered"),
            timeout_seconds=60,
            what="the page view in the good index",
            interval=0.5,
        )
    finally:
        for process in reversed(started):
            process.stop()

    (hit,) = hits
    assert hit["_source"]["app_id"] == "rendered"
    assert hit["_source"]["event"] == "page_view"
    assert env["SNOWPLOW_COLLECTOR_NSQ__NSQD_HTTP_ADDRESS"] == fresh_nsqd.http_address
