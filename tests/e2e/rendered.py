"""The whole Mini as the operator renders it, run as separate processes on loopback.

The collector, enrich and both sinks start with the container ``args`` of their rendered
Deployments and the variables of the ConfigMaps those name in ``envFrom``; the mounted
ConfigMaps (resolver, enrichments) are written where the pod would see them. The helpers that
play the kubelet (``mount``, ``environment``) are the operator tests' own, so both suites
substitute exactly the same things: service addresses, the config root, and the listening
address and port. Everything else is what the operator renders for the spec.

The spec has one HTTP registry, a static Iglu folder served on 127.0.0.1, and no Iglu
Central, so that self-describing events validate without any other host.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import http.server
import json
import os
import pathlib
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from snowplow_operator import rendering, specs
from tests.components.es_server import ElasticsearchServer
from tests.components.nsq_server import NsqdServer
from tests.components.processes import ManagedProcess, free_port, wait_until
from tests.local.conftest import TEST_SCHEMAS
from tests.operator.test_rendered_pipeline import BIN, NAMESPACE, environment, mount

MINI_NAME = "dev"  # the name the operator tests' substitutions expect
# Start order: consumers first, so nothing waits in a topic without a channel.
COMPONENTS = ("sink-good", "sink-bad", "enrich", "collector")
START_SECONDS = 90.0
Object = dict[str, Any]

# Processes get SIGKILL when the thread that started them ends (PR_SET_PDEATHSIG follows the
# thread, not the process), and asyncio.to_thread's threads end with each test's event loop.
# So processes that must outlive a test are started from this one thread, which lives as long
# as the test run.
_LAUNCHER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="launcher")


async def in_launcher(action: Callable[[], None]) -> None:
    """Run ``action`` (which may start processes) on the long-lived launcher thread."""
    await asyncio.get_running_loop().run_in_executor(_LAUNCHER, action)


def spec(registry_url: str, *, enrichments: dict[str, Object]) -> specs.MiniSpec:
    """A spec a user could apply: one registry for ``com.acme``, and ``enrichments``."""
    return specs.parse(
        {
            "iglu": {
                "igluCentral": False,
                "registries": [
                    {"name": "acme", "uri": registry_url, "vendorPrefixes": ["com.acme"]}
                ],
            },
            "enrich": {
                "enrichments": [
                    {"name": name, "config": config} for name, config in enrichments.items()
                ]
            },
        }
    )


def render(mini_spec: specs.MiniSpec) -> dict[tuple[str, str], Object]:
    mini = rendering.Mini(MINI_NAME, NAMESPACE, "uid-e2e", mini_spec)
    return {(m["kind"], m["metadata"]["name"]): m for m in rendering.render(mini, api_keys={})}


@contextlib.contextmanager
def static_registry(root: pathlib.Path) -> Iterator[str]:
    """Serve the test schemas in the static Iglu layout on 127.0.0.1; yield its URL."""
    for schema in TEST_SCHEMAS:
        s = schema["self"]
        path = root / "schemas" / s["vendor"] / s["name"] / s["format"] / s["version"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclasses.dataclass
class Component:
    """One rendered pipeline container, run as a local process on its own port."""

    name: str
    process: ManagedProcess
    port: int
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start and wait for ``/health``; the port and environment stay the same."""
        self.process.start()
        wait_until(
            self.is_healthy,
            timeout_seconds=START_SECONDS,
            what=f"{self.name} /health",
            process=self.process,
        )

    def is_healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
            return bool(response.status == 200)

    def rss_bytes(self) -> int:
        """Resident memory of the process (its group leader), from /proc."""
        status = pathlib.Path(f"/proc/{self.process.pid}/status").read_text()
        (line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
        return int(line.split()[1]) * 1024


@dataclasses.dataclass
class RenderedPipeline:
    nsqd: NsqdServer
    elasticsearch: ElasticsearchServer
    components: dict[str, Component]
    children: dict[tuple[str, str], Object]

    @property
    def collector_url(self) -> str:
        return self.components["collector"].url

    def kill(self, name: str) -> None:
        """SIGKILL the component's whole process group, as a crash or OOM kill would."""
        self.components[name].process.kill()

    def start(self, name: str) -> None:
        self.components[name].start()

    def stop_all(self) -> None:
        for name in reversed(COMPONENTS):
            if name in self.components:
                self.components[name].process.stop()


def prepare(
    children: dict[tuple[str, str], Object],
    *,
    root: pathlib.Path,
    nsqd: NsqdServer,
    elasticsearch: ElasticsearchServer,
) -> dict[str, Component]:
    """Mount each component's files and build its process from the rendered Deployment."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SNOWPLOW_")}
    components = {}
    for name in COMPONENTS:
        pod = children[("Deployment", f"{MINI_NAME}-{name}")]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        mount(children, pod, root / name)
        port = free_port()
        env = environment(
            children,
            container,
            root=root / name,
            nsqd=nsqd,
            elasticsearch=elasticsearch,
            port=port,
        )
        command, *args = container["args"]
        process = ManagedProcess(
            name,
            [str(BIN / command), *args],
            log_path=root / f"{name}.log",
            env={**inherited, **env},
        )
        components[name] = Component(name=name, process=process, port=port, env=env)
    return components


@contextlib.contextmanager
def running(
    root: pathlib.Path,
    *,
    nsqd: NsqdServer,
    elasticsearch: ElasticsearchServer,
    enrichments: dict[str, Object],
) -> Iterator[RenderedPipeline]:
    """Serve the registry, start the four components, yield; stop all of them on exit."""
    with static_registry(root / "registry") as registry_url:
        children = render(spec(registry_url, enrichments=enrichments))
        components = prepare(children, root=root, nsqd=nsqd, elasticsearch=elasticsearch)
        pipeline = RenderedPipeline(
            nsqd=nsqd, elasticsearch=elasticsearch, components=components, children=children
        )
        try:
            for name in COMPONENTS:
                pipeline.start(name)
            yield pipeline
        finally:
            pipeline.stop_all()
