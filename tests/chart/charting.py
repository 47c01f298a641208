"""Running the real helm binary on our chart, and reading what it renders as plain dicts."""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).parents[2]
CHART = ROOT / "charts" / "snowplow-mini-operator"
CRD_FILE = ROOT / "crds" / "snowplowminis.snowplowmini.dev.yaml"
EXAMPLE_FILE = ROOT / "docs" / "examples" / "mini.yaml"
# helm template defaults to the Kubernetes version of its own client library (1.37); the chart
# declares kubeVersion, so render for the version the tests run.
KUBE_VERSION = "1.36.3"
Object = dict[str, Any]


class HelmError(Exception):
    """helm exited non-zero; ``stderr`` holds its message."""

    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"helm {' '.join(args)} failed: {stderr.strip()}")
        self.stderr = stderr


def run(helm: pathlib.Path, *args: str, timeout_seconds: float = 120) -> str:
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=timeout_seconds, check=False
    )
    if result.returncode != 0:
        raise HelmError(list(args), result.stderr)
    return result.stdout


def set_args(values: Mapping[str, str] | None) -> list[str]:
    """``--set-string``/``--set`` pairs; a value starting with ``{`` is a list, as on the CLI."""
    args: list[str] = []
    for key, value in (values or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


def template(
    helm: pathlib.Path,
    values: Mapping[str, str] | None = None,
    *,
    release: str = "spmo",
    namespace: str = "snowplow-operator",
) -> list[Object]:
    """``helm template`` with ``values``; every rendered manifest, in order."""
    out = run(
        helm,
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        *set_args(values),
    )
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(manifests: Iterable[Object], kind: str, name: str | None = None) -> list[Object]:
    return [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]


def only(manifests: Iterable[Object], kind: str, name: str | None = None) -> Object:
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def rule_set(rules: list[Object]) -> set[tuple[str, str, str]]:
    """RBAC rules flattened into (apiGroup, resource, verb) triples, for exact comparison."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def load_values() -> Object:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def load_chart_metadata() -> Object:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())
