"""Helpers for the operator's tests against the real control plane.

``wait_for_ready`` is this suite's ``kubectl wait --for=condition=Ready``: kubectl is not part
of the provisioned components, so the same rule is applied with the Python client. A condition
counts only when its ``observedGeneration`` is not older than ``metadata.generation``, exactly
as kubectl decides.
"""

from __future__ import annotations

import pathlib
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import kubernetes
import yaml

from snowplow_operator import naming
from tests.components.processes import ManagedProcess

CRD_FILE = pathlib.Path(__file__).parents[2] / "crds" / "snowplowminis.snowplowmini.dev.yaml"
T = TypeVar("T")
Object = dict[str, Any]


def load_crd() -> Object:
    return yaml.safe_load(CRD_FILE.read_text())


def install_crd(api: kubernetes.client.ApiClient) -> None:
    """Create or replace the CRD, then wait until it is Established."""
    extensions = kubernetes.client.ApiextensionsV1Api(api)
    crd = load_crd()
    name = crd["metadata"]["name"]
    try:
        existing = extensions.read_custom_resource_definition(name)
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
        extensions.create_custom_resource_definition(crd)
    else:
        crd["metadata"]["resourceVersion"] = existing.metadata.resource_version
        extensions.replace_custom_resource_definition(name, crd)

    def established() -> bool:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    poll(established, timeout_seconds=30, what=f"CRD {name} Established")


def poll(
    check: Callable[[], T | None], *, timeout_seconds: float, what: str, interval: float = 0.2
) -> T:
    """Call ``check`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout_seconds:.0f} s waiting for {what} (last: {last!r})"
    )


def new_namespace(api: kubernetes.client.ApiClient, prefix: str = "op") -> str:
    """A fresh namespace that enforces the "restricted" Pod Security Standard."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    kubernetes.client.CoreV1Api(api).create_namespace(
        {"metadata": {"name": name, "labels": labels}}
    )
    return name


class Minis:
    """SnowplowMini objects in one namespace, as plain dicts."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.namespace = namespace

    def _args(self) -> tuple[str, str, str, str]:
        return (naming.GROUP, naming.VERSION, self.namespace, naming.PLURAL)

    def create(self, name: str, spec: Object | None = None) -> Object:
        body = {
            "apiVersion": naming.API_VERSION,
            "kind": naming.KIND,
            "metadata": {"name": name},
            "spec": spec or {},
        }
        return self.custom.create_namespaced_custom_object(*self._args(), body)

    def get(self, name: str) -> Object:
        return self.custom.get_namespaced_custom_object(*self._args(), name)

    def patch_spec(self, name: str, spec: Object) -> Object:
        return self.custom.patch_namespaced_custom_object(*self._args(), name, {"spec": spec})

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(*self._args(), name)

    def exists(self, name: str) -> bool:
        try:
            self.get(name)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def wait_for_ready(self, name: str, *, timeout_seconds: float = 60) -> Object:
        """``kubectl wait --for=condition=Ready`` done with the Python client."""

        def ready() -> Object | None:
            mini = self.get(name)
            return mini if is_condition_met(mini, "Ready") else None

        return poll(ready, timeout_seconds=timeout_seconds, what=f"{name} Ready")

    def wait_for_condition(
        self, name: str, type_: str, status: str, *, timeout_seconds: float = 30
    ) -> Object:
        def met() -> Object | None:
            mini = self.get(name)
            return mini if is_condition_met(mini, type_, status) else None

        return poll(met, timeout_seconds=timeout_seconds, what=f"{name} {type_}={status}")


def is_condition_met(mini: Object, type_: str, status: str = "True") -> bool:
    """kubectl's rule: type and status match, and the condition is not for an older generation."""
    generation = mini["metadata"].get("generation")
    for condition in (mini.get("status") or {}).get("conditions", []):
        if condition["type"].lower() != type_.lower():
            continue
        observed = condition.get(
            "observedGeneration", (mini.get("status") or {}).get("observedGeneration")
        )
        if generation is not None and observed is not None and observed < generation:
            return False
        return condition["status"].lower() == status.lower()
    return False


def condition(mini: Object, type_: str) -> Object:
    found = [c for c in mini["status"]["conditions"] if c["type"] == type_]
    assert found, f"no {type_} condition in {mini['status']['conditions']}"
    return found[0]


def start_operator(
    kubeconfig: pathlib.Path, namespace: str, log_path: pathlib.Path, *extra: str
) -> ManagedProcess:
    """``snowplow-mini operator --namespace <ns>`` as a subprocess of this test run."""
    process = ManagedProcess(
        "operator",
        [
            sys.executable,
            "-c",
            "from snowplow_pipeline.cli import main; raise SystemExit(main())",
            "operator",
            "--namespace",
            namespace,
            "--kubeconfig",
            str(kubeconfig),
            "--resync-seconds",
            "10",
            *extra,
        ],
        log_path=log_path,
    )
    process.start()
    return process
