"""Installing the chart into the test cluster and running its operator as a local process.

kwok marks the operator's pod Running but executes nothing, so the operator runs here instead,
with exactly the args the chart gives its container and a kubeconfig holding a token of the
chart's ServiceAccount (TokenRequest API): whatever it manages is allowed by the chart's RBAC.
"""

from __future__ import annotations

import base64
import dataclasses
import pathlib
import sys
from typing import Any

import kubernetes
import yaml

from tests.chart import charting
from tests.components.kube_cluster import KubeCluster
from tests.components.processes import ManagedProcess, free_port


@dataclasses.dataclass
class Release:
    name: str
    namespace: str
    helm: pathlib.Path
    kubeconfig: pathlib.Path
    installed: bool = False

    def _helm(self, *args: str) -> str:
        return charting.run(
            self.helm, *args, "--namespace", self.namespace, "--kubeconfig", str(self.kubeconfig)
        )

    def install(self, values: dict[str, str] | None = None) -> str:
        """``helm install --wait``; the CRD may already exist (crds/), so take it over."""
        out = self._helm(
            "install", self.name, str(charting.CHART), "--take-ownership",
            "--wait", "--timeout", "120s", *charting.set_args(values),
        )  # fmt: skip
        self.installed = True
        return out

    def upgrade(self, values: dict[str, str]) -> str:
        return self._helm(
            "upgrade", self.name, str(charting.CHART), "--reuse-values",
            "--wait", "--timeout", "120s", *charting.set_args(values),
        )  # fmt: skip

    def uninstall(self) -> str:
        out = self._helm("uninstall", self.name, "--wait", "--timeout", "120s")
        self.installed = False
        return out

    def manifests(self) -> list[charting.Object]:
        out = self._helm("get", "manifest", self.name)
        return [doc for doc in yaml.safe_load_all(out) if doc]


@dataclasses.dataclass
class LocalOperator:
    process: ManagedProcess
    liveness_url: str


def create_namespace(api: kubernetes.client.ApiClient, name: str) -> str:
    """A namespace enforcing the restricted Pod Security Standard, like the operator tests'."""
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    kubernetes.client.CoreV1Api(api).create_namespace(
        {"metadata": {"name": name, "labels": labels}}
    )
    return name


def service_account_kubeconfig(
    api: kubernetes.client.ApiClient,
    cluster: KubeCluster,
    *,
    namespace: str,
    name: str,
    path: pathlib.Path,
) -> pathlib.Path:
    """A kubeconfig with a one-hour token of ServiceAccount ``namespace/name``."""
    request = kubernetes.client.CoreV1Api(api).create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": cluster.server,
                    "certificate-authority-data": base64.b64encode(
                        cluster.ca_file.read_bytes()
                    ).decode("ascii"),
                },
            }
        ],
        "users": [{"name": name, "user": {"token": request.status.token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": name}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def container_args(manifests: list[charting.Object]) -> list[str]:
    deployment = charting.only(manifests, "Deployment")
    return list(deployment["spec"]["template"]["spec"]["containers"][0]["args"])


def start_operator(
    chart_args: list[str], kubeconfig: pathlib.Path, log_path: pathlib.Path
) -> LocalOperator:
    """``snowplow-mini <chart args> --kubeconfig FILE``; listeners moved to 127.0.0.1.

    The image's entrypoint is ``snowplow-mini`` (operator/Dockerfile), so the chart's args are
    the whole command line after it. Only the liveness and metrics addresses change: in a pod
    they listen on 0.0.0.0 for the kubelet, here on loopback.
    """
    args = list(chart_args)
    liveness_url = f"http://127.0.0.1:{free_port()}/healthz"
    args[args.index("--liveness-url") + 1] = liveness_url
    if "--metrics-host" in args:
        args[args.index("--metrics-host") + 1] = "127.0.0.1"
        args[args.index("--metrics-port") + 1] = str(free_port())
    process = ManagedProcess(
        "operator",
        [
            sys.executable, "-c",
            "from snowplow_pipeline.cli import main; raise SystemExit(main())",
            *args, "--kubeconfig", str(kubeconfig),
        ],
        log_path=log_path,
    )  # fmt: skip
    process.start()
    return LocalOperator(process=process, liveness_url=liveness_url)


def status_of(call: Any) -> int:
    """The HTTP status a client call ends with (200 when it succeeds)."""
    try:
        call()
    except kubernetes.client.ApiException as exc:
        return exc.status
    return 200
