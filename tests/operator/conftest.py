"""Fixtures of the operator tests: the CRD installed once, a restricted namespace per test, and
the operator as a subprocess (``snowplow-mini operator``) watching that namespace."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import kubernetes
import pytest

from tests.components.kube_cluster import KubeCluster
from tests.components.processes import ManagedProcess
from tests.operator import cluster


@pytest.fixture(scope="session")
def kube_api(kube_cluster: KubeCluster) -> Iterator[kubernetes.client.ApiClient]:
    with kube_cluster.api_client() as api:
        yield api


@pytest.fixture(scope="session")
def crd_installed(kube_api: kubernetes.client.ApiClient) -> None:
    cluster.install_crd(kube_api)


@pytest.fixture
def namespace(kube_api: kubernetes.client.ApiClient, crd_installed: None) -> Iterator[str]:
    name = cluster.new_namespace(kube_api)
    yield name
    try:
        kubernetes.client.CoreV1Api(kube_api).delete_namespace(name)
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:  # a test may delete its namespace itself
            raise


@pytest.fixture
def minis(kube_api: kubernetes.client.ApiClient, namespace: str) -> cluster.Minis:
    return cluster.Minis(kube_api, namespace)


OperatorFactory = Callable[..., ManagedProcess]


@pytest.fixture
def start_operator(
    kube_cluster: KubeCluster, namespace: str, tmp_path: pathlib.Path
) -> Iterator[OperatorFactory]:
    """Start the operator for the test's namespace; every one started is stopped after."""
    started: list[ManagedProcess] = []

    def start(*extra: str) -> ManagedProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        process = cluster.start_operator(kube_cluster.kubeconfig, namespace, log, *extra)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def operator(start_operator: OperatorFactory) -> ManagedProcess:
    return start_operator()
