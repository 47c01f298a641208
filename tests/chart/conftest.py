"""Fixtures of the chart's tests on the real control plane: an admin client, the chart installed
with helm, and the operator started as a local process with the chart's own arguments and the
chart's ServiceAccount token (kwok runs nothing inside pods)."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable, Iterator

import kubernetes
import pytest

from tests.chart import installing
from tests.components.kube_cluster import KubeCluster
from tests.components.processes import ManagedProcess


@pytest.fixture(scope="session")
def admin_api(kube_cluster: KubeCluster) -> Iterator[kubernetes.client.ApiClient]:
    with kube_cluster.api_client() as api:
        yield api


@pytest.fixture
def new_namespace(admin_api: kubernetes.client.ApiClient) -> Iterator[Callable[[str], str]]:
    """Make restricted namespaces for one test; all are deleted after it."""
    made: list[str] = []

    def make(prefix: str) -> str:
        made.append(installing.create_namespace(admin_api, f"{prefix}-{uuid.uuid4().hex[:6]}"))
        return made[-1]

    yield make
    core = kubernetes.client.CoreV1Api(admin_api)
    for name in made:
        try:
            core.delete_namespace(name)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def release(
    helm: pathlib.Path, kube_cluster: KubeCluster, new_namespace: Callable[[str], str]
) -> Iterator[installing.Release]:
    """A release name and namespace; the release is uninstalled after the test if still there."""
    rel = installing.Release(
        name=f"spmo-{uuid.uuid4().hex[:6]}",
        namespace=new_namespace("spmo"),
        helm=helm,
        kubeconfig=kube_cluster.kubeconfig,
    )
    yield rel
    if rel.installed:
        rel.uninstall()


@pytest.fixture
def start_operator(tmp_path: pathlib.Path) -> Iterator[Callable[..., installing.LocalOperator]]:
    started: list[ManagedProcess] = []

    def start(args: list[str], kubeconfig: pathlib.Path) -> installing.LocalOperator:
        operator = installing.start_operator(args, kubeconfig, tmp_path / "operator.log")
        started.append(operator.process)
        return operator

    yield start
    for process in started:
        process.stop()
