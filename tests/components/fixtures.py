"""pytest fixtures that run the real components: Kubernetes, nsqd, Elasticsearch, Helm.

Registered from ``tests/conftest.py`` with ``pytest_plugins = ["tests.components.fixtures"]``.
Session fixtures start a component the first time a test asks for it, so ``-m nsq`` starts
only nsqd. Everything listens on 127.0.0.1 on ports that were free at start-up. A missing
component is an error, never a skip: run ``make provision`` (``make test`` does).

Fixtures and what they hand to tests:

- ``kube_cluster`` -> ``KubeCluster``: ``kubeconfig`` (path, admin), ``server`` (URL),
  ``ca_file``, ``version`` (pinned, e.g. ``v1.36.3``), ``node_names`` (two kwok nodes),
  ``api_client()`` (official ``kubernetes`` client, admin), ``kubeconfig_for(user, groups=)``
  (a certificate identity that RBAC applies to), ``processes`` (name -> ``ManagedProcess``).
- ``nsqd`` -> ``NsqdServer``: ``tcp_address``, ``http_address``, ``http_url``, ``host``,
  ``tcp_port``, ``http_port``, ``data_dir``, ``stop()``, ``kill()``, ``start()``,
  ``restart()`` (same ports, same data). ``fresh_nsqd`` is a private one for one test.
- ``elasticsearch`` -> ``ElasticsearchServer``: ``url``, ``host``, ``port``, ``version``,
  ``data_dir``, ``stop()``, ``kill()``, ``start()``, ``restart()`` (same port, same data).
  ``fresh_elasticsearch`` is a private one for one test (about 15 s to start).
- ``helm`` -> ``pathlib.Path`` of the pinned helm binary.
- ``component_versions`` -> the pinned ``layout.Versions``.

A test that stops a shared server should start it again itself; if it does not (it failed
half-way), the server is started again before the next test so that one failure does not
cascade.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
from collections.abc import Iterator
from typing import Protocol, TypeVar

import pytest

from tests.components import layout, processes
from tests.components.es_server import ElasticsearchServer
from tests.components.kube_cluster import KubeCluster, start_cluster
from tests.components.nsq_server import NsqdServer
from tests.components.processes import require_file

logger = logging.getLogger(__name__)


class _Restartable(Protocol):
    def is_running(self) -> bool: ...

    def start(self) -> None: ...


_Server = TypeVar("_Server", NsqdServer, ElasticsearchServer)

# Shared servers that must be running at the start of every test (see the module docstring).
_shared_servers: list[_Restartable] = []


def pytest_configure(config: pytest.Config) -> None:
    processes.install_signal_handlers()


def pytest_runtest_setup(item: pytest.Item) -> None:
    for server in _shared_servers:
        if not server.is_running():
            logger.warning(
                "%s was left stopped by an earlier test; starting it again.", type(server).__name__
            )
            server.start()


@pytest.fixture(scope="session")
def component_layout() -> layout.Layout:
    return layout.current()


@pytest.fixture(scope="session")
def component_versions(component_layout: layout.Layout) -> layout.Versions:
    return component_layout.versions


@pytest.fixture(scope="session")
def kube_cluster(
    component_layout: layout.Layout, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubeCluster]:
    """etcd, kube-apiserver (RBAC on), controller-manager, scheduler and two kwok nodes."""
    cluster = start_cluster(tmp_path_factory.mktemp("kube-cluster"), component_layout)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def nsqd(
    component_layout: layout.Layout, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NsqdServer]:
    """One nsqd shared by the session; topics and channels persist between tests."""
    with _running(NsqdServer(tmp_path_factory.mktemp("nsqd"), component_layout)) as server:
        _shared_servers.append(server)
        try:
            yield server
        finally:
            _shared_servers.remove(server)


@pytest.fixture
def fresh_nsqd(component_layout: layout.Layout, tmp_path: pathlib.Path) -> Iterator[NsqdServer]:
    """A private nsqd with an empty data folder, stopped after the test."""
    with _running(NsqdServer(tmp_path / "nsqd", component_layout)) as server:
        yield server


@pytest.fixture(scope="session")
def elasticsearch(component_layout: layout.Layout) -> Iterator[ElasticsearchServer]:
    """One Elasticsearch node shared by the session; use distinct index names per test."""
    server = ElasticsearchServer(component_layout)
    try:
        with _running(server):
            _shared_servers.append(server)
            try:
                yield server
            finally:
                _shared_servers.remove(server)
    finally:
        server.remove()


@pytest.fixture
def fresh_elasticsearch(component_layout: layout.Layout) -> Iterator[ElasticsearchServer]:
    """A private, empty Elasticsearch node, removed after the test."""
    server = ElasticsearchServer(component_layout)
    try:
        with _running(server):
            yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def helm(component_layout: layout.Layout) -> pathlib.Path:
    """The pinned, version-stamped helm binary."""
    return require_file(component_layout.binary("helm"), "helm")


@pytest.fixture(scope="session")
def kubectl(component_layout: layout.Layout) -> pathlib.Path:
    """The kubectl of the pinned Kubernetes release, built with the control plane."""
    return require_file(component_layout.binary("kubectl"), "kubectl")


@contextlib.contextmanager
def _running(server: _Server) -> Iterator[_Server]:
    """Start a server and stop it on exit, whatever happened in between."""
    try:
        server.start()
        yield server
    finally:
        server.stop()
