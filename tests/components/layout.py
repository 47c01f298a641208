"""Where the pinned test components live in the cache.

Both the provisioning step (which writes the cache) and the pytest fixtures (which run what is
in it) take every path from here, so the two can never disagree. Each file name carries its
version: a bump in ``versions.toml`` produces new names and the old build stays untouched, and
a fresh clone on the same machine finds everything already built.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import tomllib

VERSIONS_FILE = pathlib.Path(__file__).with_name("versions.toml")
CACHE_ENV = "SNOWPLOW_MINI_CACHE"
DEFAULT_CACHE = pathlib.Path.home() / ".cache" / "snowplow-mini-k8s"

# The upstream "fast" kwok stages: nodes become Ready at once and keep a lease, pods bound by
# the scheduler become Running and Ready, and deleted pods go away.
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


@dataclasses.dataclass(frozen=True)
class Versions:
    """The pinned versions, read from ``versions.toml``."""

    kubernetes: str
    etcd: str
    kwok: str
    nsq: str
    nsq_go_svc_fork: str
    helm: str
    elasticsearch: str
    java_home: pathlib.Path
    elasticsearch_user: str
    maven_dependency_plugin: str

    @property
    def kubernetes_staging(self) -> str:
        """The tag of the k8s.io staging modules that belongs to the Kubernetes release."""
        return "v0." + self.kubernetes.removeprefix("v1.")


def read_versions(path: pathlib.Path = VERSIONS_FILE) -> Versions:
    """Read the pinned versions; a missing key raises ``KeyError`` naming it."""
    data = tomllib.loads(path.read_text())
    return Versions(
        kubernetes=data["kubernetes"]["version"],
        etcd=data["etcd"]["version"],
        kwok=data["kwok"]["version"],
        nsq=data["nsq"]["version"],
        nsq_go_svc_fork=data["nsq"]["go_svc_fork"],
        helm=data["helm"]["version"],
        elasticsearch=data["elasticsearch"]["version"],
        java_home=pathlib.Path(data["elasticsearch"]["java_home"]),
        elasticsearch_user=data["elasticsearch"]["user"],
        maven_dependency_plugin=data["maven"]["dependency_plugin"],
    )


def cache_dir() -> pathlib.Path:
    """The cache root: ``$SNOWPLOW_MINI_CACHE`` if set, else ``~/.cache/snowplow-mini-k8s``."""
    override = os.environ.get(CACHE_ENV)
    return pathlib.Path(override).expanduser().resolve() if override else DEFAULT_CACHE


@dataclasses.dataclass(frozen=True)
class Layout:
    """Paths of every provisioned component under one cache root."""

    root: pathlib.Path
    versions: Versions

    def binary(self, name: str) -> pathlib.Path:
        """The versioned path of one of the built binaries, e.g. ``bin/nsqd-v1.3.0``."""
        return self.root / "bin" / f"{name}-{self._version_of(name)}"

    def _version_of(self, name: str) -> str:
        v = self.versions
        by_name = {
            "kube-apiserver": v.kubernetes,
            "kube-controller-manager": v.kubernetes,
            "kube-scheduler": v.kubernetes,
            "kubectl": v.kubernetes,
            "etcd": v.etcd,
            "kwok": v.kwok,
            "nsqd": v.nsq,
            "nsqlookupd": v.nsq,
            "helm": v.helm,
        }
        return by_name[name]

    @property
    def kwok_stages_dir(self) -> pathlib.Path:
        return self.root / f"kwok-stages-{self.versions.kwok}"

    @property
    def kwok_stage_files(self) -> list[pathlib.Path]:
        return [self.kwok_stages_dir / pathlib.PurePath(p).name for p in KWOK_STAGE_FILES]

    @property
    def elasticsearch_home(self) -> pathlib.Path:
        return self.root / f"elasticsearch-{self.versions.elasticsearch}"

    @property
    def downloads_dir(self) -> pathlib.Path:
        return self.root / "downloads"

    def build_dir(self, name: str) -> pathlib.Path:
        """A Go wrapper module's folder, e.g. ``build/k8s-v1.36.3``."""
        return self.root / "build" / name


def current() -> Layout:
    """The layout for the configured cache root and the pinned versions."""
    return Layout(root=cache_dir(), versions=read_versions())
