"""A real Kubernetes control plane as local processes, with kwok standing in for the nodes.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real, version-stamped
binaries of the pinned release; kwok marks the fake nodes Ready and the pods the scheduler binds
to them Running and Ready. No container ever runs: a Deployment reaches Available and owned
objects are garbage-collected exactly as in a cluster, but nothing executes inside a pod.

The flags follow what kwokctl's binary runtime passes, done by hand so that the fixtures own
every process (one process group each) and nothing is supervised behind their back. Unlike
kwokctl's single shared certificate, each component gets its own identity, so RBAC sees
``system:kube-controller-manager``, ``system:kube-scheduler`` and an admin in ``system:masters``.
Everything listens on 127.0.0.1 on ports free at start-up.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import pathlib
import ssl
import urllib.request
from typing import Any

import kubernetes
import yaml

from tests.components import layout, pki
from tests.components.processes import ManagedProcess, free_port, require_file, wait_until

logger = logging.getLogger(__name__)

NODE_NAMES = ("kwok-node-0", "kwok-node-1")
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
START_TIMEOUT_SECONDS = 120.0


@dataclasses.dataclass
class KubeCluster:
    """A running control plane; hand ``kubeconfig`` to any client or to the operator."""

    kubeconfig: pathlib.Path
    server: str
    ca_file: pathlib.Path
    version: str
    node_names: tuple[str, ...]
    workdir: pathlib.Path
    processes: dict[str, ManagedProcess]
    _ca: pki.CertificateAuthority

    def api_client(self) -> kubernetes.client.ApiClient:
        """A new admin (``system:masters``) client of the official ``kubernetes`` package."""
        return kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubeconfig_for(self, user: str, *, groups: tuple[str, ...] = ()) -> pathlib.Path:
        """A kubeconfig with a client certificate for ``user`` in ``groups``.

        RBAC applies to it as to any user: use it to check what a role really allows.
        """
        stem = "user-" + "".join(c if c.isalnum() else "-" for c in user)
        pair = self._ca.issue(stem, common_name=user, organizations=groups)
        path = self.workdir / f"{stem}.kubeconfig"
        write_kubeconfig(path, server=self.server, ca_file=self.ca_file, pair=pair, user=user)
        return path

    def stop(self) -> None:
        """Stop the components in reverse start order; every one is attempted."""
        errors: list[BaseException] = []
        for process in reversed(list(self.processes.values())):
            try:
                process.stop()
            except Exception as exc:  # stop the rest, then report
                errors.append(exc)
        if errors:
            raise errors[0]


def start_cluster(workdir: pathlib.Path, lay: layout.Layout) -> KubeCluster:
    """Start etcd, the API server, controller-manager, scheduler and kwok; wait until usable.

    On any failure the processes started so far are stopped before the error propagates.
    """
    binaries = {
        name: require_file(lay.binary(name), name)
        for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
    }
    stages = [require_file(path, "kwok stage file") for path in lay.kwok_stage_files]
    workdir.mkdir(parents=True, exist_ok=True)
    processes: dict[str, ManagedProcess] = {}
    try:
        return _start(workdir, lay, binaries, stages, processes)
    except BaseException:
        for process in reversed(list(processes.values())):
            process.stop()
        raise


def _start(
    workdir: pathlib.Path,
    lay: layout.Layout,
    binaries: dict[str, pathlib.Path],
    stages: list[pathlib.Path],
    processes: dict[str, ManagedProcess],
) -> KubeCluster:
    ca = pki.CertificateAuthority(workdir / "pki")
    admin = ca.issue("admin", common_name="kubernetes-admin", organizations=("system:masters",))
    logs = workdir / "logs"

    etcd_url = _start_etcd(binaries["etcd"], workdir, logs, processes)
    server = _start_apiserver(binaries["kube-apiserver"], workdir, ca, admin, etcd_url, processes)
    kubeconfig = workdir / "admin.kubeconfig"
    write_kubeconfig(kubeconfig, server=server, ca_file=ca.ca_file, pair=admin, user="admin")

    # Controllers and scheduler, each with its own RBAC identity.
    _start_controller_manager(binaries["kube-controller-manager"], workdir, ca, server, processes)
    _start_scheduler(binaries["kube-scheduler"], workdir, ca, server, processes)
    cluster = KubeCluster(
        kubeconfig=kubeconfig,
        server=server,
        ca_file=ca.ca_file,
        version=lay.versions.kubernetes,
        node_names=NODE_NAMES,
        workdir=workdir,
        processes=processes,
        _ca=ca,
    )

    # Fake nodes: registered here, made Ready and kept alive by kwok.
    _start_kwok(binaries["kwok"], workdir, ca, server, stages, processes)
    with cluster.api_client() as api:
        _register_nodes(api)
        _wait_for_usable(api, processes["kube-controller-manager"])
    return cluster


def _start_etcd(
    binary: pathlib.Path,
    workdir: pathlib.Path,
    logs: pathlib.Path,
    processes: dict[str, ManagedProcess],
) -> str:
    client_url = f"http://127.0.0.1:{free_port()}"
    peer_url = f"http://127.0.0.1:{free_port()}"
    process = ManagedProcess(
        "etcd",
        [
            str(binary),
            "--name=node0",
            f"--data-dir={workdir / 'etcd-data'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=node0={peer_url}",
            "--auto-compaction-retention=1",
            "--quota-backend-bytes=1073741824",
            # Test data is thrown away: skip the fsyncs that dominate etcd's latency.
            "--unsafe-no-fsync",
        ],
        log_path=logs / "etcd.log",
    )
    processes["etcd"] = process
    process.start()
    wait_until(
        lambda: json.loads(_get(f"{client_url}/health")).get("health") == "true",
        timeout_seconds=START_TIMEOUT_SECONDS,
        what="etcd /health",
        process=process,
    )
    return client_url


def _start_apiserver(
    binary: pathlib.Path,
    workdir: pathlib.Path,
    ca: pki.CertificateAuthority,
    admin: pki.KeyPair,
    etcd_url: str,
    processes: dict[str, ManagedProcess],
) -> str:
    port = free_port()
    serving = ca.issue("apiserver", common_name="kube-apiserver", server=True, client=False)
    sa_keys = pki.write_service_account_keys(workdir / "pki")
    process = ManagedProcess(
        "kube-apiserver",
        [
            str(binary),
            f"--etcd-servers={etcd_url}",
            "--etcd-prefix=/registry",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={serving.cert_file}",
            f"--tls-private-key-file={serving.key_file}",
            f"--client-ca-file={ca.ca_file}",
            f"--service-account-key-file={sa_keys.cert_file}",
            f"--service-account-signing-key-file={sa_keys.key_file}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            # The loopback address may not stand in the `kubernetes` Service's endpoints.
            "--endpoint-reconciler-type=none",
        ],
        log_path=workdir / "logs" / "kube-apiserver.log",
    )
    processes["kube-apiserver"] = process
    process.start()
    server = f"https://127.0.0.1:{port}"
    context = _tls_context(ca.ca_file, admin)
    wait_until(
        lambda: _get(f"{server}/readyz", context) == "ok",
        timeout_seconds=START_TIMEOUT_SECONDS,
        what="kube-apiserver /readyz",
        process=process,
    )
    return server


def _start_controller_manager(
    binary: pathlib.Path,
    workdir: pathlib.Path,
    ca: pki.CertificateAuthority,
    server: str,
    processes: dict[str, ManagedProcess],
) -> None:
    name = "kube-controller-manager"
    kubeconfig = _component_kubeconfig(workdir, ca, server, name, f"system:{name}")
    port = free_port()
    process = ManagedProcess(
        name,
        [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={workdir / name}",
            f"--root-ca-file={ca.ca_file}",
            f"--service-account-private-key-file={workdir / 'pki' / 'sa.key'}",
            # Controllers act with one service account each, as in kubeadm clusters.
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={ca.ca_file}",
            f"--cluster-signing-key-file={ca.ca_key_file}",
            "--leader-elect=false",
        ],
        log_path=workdir / "logs" / f"{name}.log",
    )
    processes[name] = process
    process.start()
    _wait_for_healthz(process, f"https://127.0.0.1:{port}/healthz")


def _start_scheduler(
    binary: pathlib.Path,
    workdir: pathlib.Path,
    ca: pki.CertificateAuthority,
    server: str,
    processes: dict[str, ManagedProcess],
) -> None:
    name = "kube-scheduler"
    kubeconfig = _component_kubeconfig(workdir, ca, server, name, f"system:{name}")
    port = free_port()
    process = ManagedProcess(
        name,
        [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={workdir / name}",
            "--leader-elect=false",
        ],
        log_path=workdir / "logs" / f"{name}.log",
    )
    processes[name] = process
    process.start()
    _wait_for_healthz(process, f"https://127.0.0.1:{port}/healthz")


def _start_kwok(
    binary: pathlib.Path,
    workdir: pathlib.Path,
    ca: pki.CertificateAuthority,
    server: str,
    stages: list[pathlib.Path],
    processes: dict[str, ManagedProcess],
) -> None:
    # kwok writes node and pod status for many nodes, as no single node identity could.
    kubeconfig = _component_kubeconfig(
        workdir, ca, server, "kwok", "kwok-controller", groups=("system:masters",)
    )
    port = free_port()
    process = ManagedProcess(
        "kwok",
        [
            str(binary),
            f"--kubeconfig={kubeconfig}",
            f"--config={','.join(str(s) for s in stages)}",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            "--node-ip=127.0.0.1",
            f"--node-port={port}",
            f"--server-address=127.0.0.1:{port}",
            "--node-lease-duration-seconds=40",
        ],
        log_path=workdir / "logs" / "kwok.log",
    )
    processes["kwok"] = process
    process.start()
    _wait_for_healthz(process, f"http://127.0.0.1:{port}/healthz")


def _register_nodes(api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    for name in NODE_NAMES:
        core.create_node(_node_manifest(name))


def _node_manifest(name: str) -> dict[str, Any]:
    """A fake node as kwokctl's node template makes it: amd64/linux, 32 CPU, no taints."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
        },
    }


def _wait_for_usable(api: kubernetes.client.ApiClient, controller_manager: ManagedProcess) -> None:
    """Nodes Ready (kwok works) and the default service account exists (controllers work)."""
    core = kubernetes.client.CoreV1Api(api)

    def nodes_ready() -> bool:
        nodes = core.list_node().items
        ready = [n for n in nodes if _is_ready(n)]
        return len(ready) == len(NODE_NAMES)

    wait_until(nodes_ready, timeout_seconds=START_TIMEOUT_SECONDS, what="both kwok nodes Ready")
    wait_until(
        lambda: core.read_namespaced_service_account("default", "default") is not None,
        timeout_seconds=START_TIMEOUT_SECONDS,
        what="the default service account (created by kube-controller-manager)",
        process=controller_manager,
    )


def _is_ready(node: kubernetes.client.V1Node) -> bool:
    conditions = node.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _wait_for_healthz(process: ManagedProcess, url: str) -> None:
    # Health endpoints are served without authentication; the serving certificate is
    # self-signed, which is fine for a probe of a process we just started on loopback.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    wait_until(
        lambda: _get(url, context) == "ok",
        timeout_seconds=START_TIMEOUT_SECONDS,
        what=f"{process.name} {url}",
        process=process,
    )


def _component_kubeconfig(
    workdir: pathlib.Path,
    ca: pki.CertificateAuthority,
    server: str,
    name: str,
    user: str,
    *,
    groups: tuple[str, ...] = (),
) -> pathlib.Path:
    pair = ca.issue(name, common_name=user, organizations=groups)
    path = workdir / f"{name}.kubeconfig"
    write_kubeconfig(path, server=server, ca_file=ca.ca_file, pair=pair, user=user)
    return path


def write_kubeconfig(
    path: pathlib.Path,
    *,
    server: str,
    ca_file: pathlib.Path,
    pair: pki.KeyPair,
    user: str,
) -> None:
    """A self-contained kubeconfig (certificates embedded), usable from any folder."""

    def b64(file: pathlib.Path) -> str:
        return base64.b64encode(file.read_bytes()).decode("ascii")

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {"server": server, "certificate-authority-data": b64(ca_file)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(pair.cert_file),
                    "client-key-data": b64(pair.key_file),
                },
            }
        ],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def _tls_context(ca_file: pathlib.Path, pair: pki.KeyPair) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.load_cert_chain(str(pair.cert_file), str(pair.key_file))
    return context


def _get(url: str, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=5, context=context) as response:
        body: bytes = response.read()
    return body.decode()
