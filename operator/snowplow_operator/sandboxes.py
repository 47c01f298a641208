"""``snowplow-mini sandbox``: per-branch SnowplowMinis for CI pipelines, as a client.

This module is the client side of the operator: it creates, lists, waits for, describes and
deletes SnowplowMini objects with the API server, the way a CI job would with kubectl, and
never talks to the operator itself. Every failure leaves it as a ``SandboxError`` carrying the
exit code the command returns, so a CI job can branch on it:

* 0: done; 1: failed or timed out (the sandbox did not become Ready, Elasticsearch could not
  be asked); 2: usage or configuration error (no kubeconfig, a refused spec); 3: not found.

Credentials are found as kubectl finds them: ``--kubeconfig``, else ``$KUBECONFIG`` (a
``:``-separated list is merged), else ``~/.kube/config``, else the in-cluster service account;
``--context`` picks a context; the namespace is ``--namespace``, else the context's, else the
service account's, else ``default``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import kubernetes

from snowplow_operator import conditions, kube, naming, slugs

OK = 0
FAILED = 1
USAGE = 2
NOT_FOUND = 3

FIELD_MANAGER = "snowplow-mini-sandbox"
BRANCH_ANNOTATION = f"{naming.GROUP}/branch"
DEFAULT_KUBECONFIG = pathlib.Path("~/.kube/config")
SERVICE_ACCOUNT_NAMESPACE = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# Ready reasons that no amount of waiting changes: the user has to act.
FINAL_REASONS = ("InvalidSpec", "Suspended", "Expired")
Object = dict[str, Any]


class SandboxError(Exception):
    """A sandbox command failed; ``exit_code`` is what the command returns."""

    def __init__(self, message: str, *, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass
class Target:
    """Where the sandboxes are: a client and the namespace (``None``: all namespaces)."""

    api: kubernetes.client.ApiClient
    namespace: str | None

    @property
    def kube(self) -> kube.Kube:
        return kube.Kube(self.api)


@dataclasses.dataclass(frozen=True)
class Source:
    """What a sandbox is for, as ``sandbox create`` takes it."""

    branch: str
    owner: str | None = None
    repository: str | None = None
    pull_request: int | None = None
    commit: str | None = None


def connect(
    *,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    all_namespaces: bool = False,
    environ: dict[str, str] | None = None,
) -> Target:
    """A client and namespace chosen as kubectl chooses them (see the module docstring)."""
    environ = dict(os.environ if environ is None else environ)
    configuration = kubernetes.client.Configuration()
    files = kubeconfig or environ.get("KUBECONFIG")
    default = DEFAULT_KUBECONFIG.expanduser()
    if not files and default.exists():
        files = str(default)
    try:
        if files:
            kubernetes.config.load_kube_config(
                config_file=files, context=context, client_configuration=configuration
            )
            context_namespace = _context_namespace(files, context)
        elif environ.get("KUBERNETES_SERVICE_HOST"):
            kubernetes.config.load_incluster_config(client_configuration=configuration)
            context_namespace = _read(SERVICE_ACCOUNT_NAMESPACE)
        else:
            raise SandboxError(
                "no cluster configured: pass --kubeconfig, set KUBECONFIG, create "
                f"{DEFAULT_KUBECONFIG} or run in a pod",
                exit_code=USAGE,
            )
    except (kubernetes.config.ConfigException, OSError, ValueError) as exc:
        where = files or "in-cluster"
        raise SandboxError(f"invalid kubeconfig ({where}): {exc}", exit_code=USAGE) from exc
    chosen = None if all_namespaces else (namespace or context_namespace or "default")
    return Target(kubernetes.client.ApiClient(configuration), chosen)


def manifest(*, name: str, namespace: str, source: Source, spec: Object) -> Object:
    """The SnowplowMini ``sandbox create`` applies: labels for bulk cleanup, the raw branch."""
    labels = {naming.LABEL_BRANCH_SLUG: naming.branch_slug(source.branch)}
    if source.owner:
        labels[naming.LABEL_OWNER] = source.owner
    if source.pull_request is not None:
        labels[naming.LABEL_PULL_REQUEST] = str(source.pull_request)
    source_spec = {
        "repository": source.repository,
        "branch": source.branch,
        "pullRequest": source.pull_request,
        "commit": source.commit,
    }
    full_spec = {
        **({"owner": source.owner} if source.owner else {}),
        "source": {key: value for key, value in source_spec.items() if value is not None},
        **spec,
    }
    return {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {BRANCH_ANNOTATION: source.branch},
        },
        "spec": full_spec,
    }


def create(target: Target, *, source: Source, name: str | None, spec: Object) -> Object:
    """Create the branch's sandbox, or bring an existing one to this spec (idempotent)."""
    name = name or slugs.sandbox_name(source.branch)
    body = manifest(name=name, namespace=_namespace(target), source=source, spec=spec)
    try:
        return target.kube.apply(body, field_manager=FIELD_MANAGER)
    except kube.InvalidError as exc:
        message = f"the API server refused sandbox {name}: {exc}"
        raise SandboxError(message, exit_code=USAGE) from exc
    except kube.KubeError as exc:
        raise _wrap(exc, f"creating sandbox {name}") from exc


def get(target: Target, name: str) -> Object:
    try:
        return target.kube.get(naming.API_VERSION, naming.KIND, _namespace(target), name)
    except kube.KubeError as exc:
        raise _wrap(exc, f"reading sandbox {name}") from exc


def list_all(target: Target, *, selector: str | None = None) -> list[Object]:
    try:
        namespace = target.namespace
        items = target.kube.list_objects(
            naming.API_VERSION, naming.KIND, namespace, selector=selector
        )
    except kube.KubeError as exc:
        raise _wrap(exc, "listing sandboxes") from exc
    return sorted(items, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))


def summary(mini: Object) -> dict[str, Any]:
    """One row of ``sandbox list``."""
    ready = conditions.find((mini.get("status") or {}).get("conditions"), conditions.READY) or {}
    spec = mini.get("spec") or {}
    status = mini.get("status") or {}
    return {
        "namespace": mini["metadata"]["namespace"],
        "name": mini["metadata"]["name"],
        "ready": ready.get("status", "Unknown"),
        "reason": ready.get("reason", ""),
        "owner": spec.get("owner", ""),
        "branch": (spec.get("source") or {}).get("branch", ""),
        "pullRequest": (spec.get("source") or {}).get("pullRequest"),
        "expiresAt": status.get("expiresAt"),
        "collector": (status.get("endpoints") or {}).get("collector"),
    }


def wait_ready(
    target: Target,
    name: str,
    *,
    timeout_seconds: float,
    interval_seconds: float = 1.0,
    progress: Callable[[str], None] = lambda line: None,
) -> Object:
    """Poll until Ready is True for the current generation, kubectl's rule.

    ``progress`` gets a line each time the Ready reason or message changes. Raises
    ``SandboxError``: not found (3), a reason that waiting cannot fix (1), the timeout (1).
    """
    deadline = time.monotonic() + timeout_seconds
    last_line = None
    while True:
        mini = get(target, name)
        ready = _current_ready(mini)
        if ready is not None and ready["status"] == "True":
            return mini
        line = _progress_line(name, ready)
        if line != last_line:
            progress(line)
            last_line = line
        if ready is not None and ready["reason"] in FINAL_REASONS:
            raise SandboxError(f"sandbox {name} will not become Ready: {line}")
        if time.monotonic() >= deadline:
            raise SandboxError(
                f"sandbox {name} was not Ready after {timeout_seconds:.0f} s; last: {line}"
            )
        time.sleep(interval_seconds)


def endpoint(mini: Object, component: str) -> str:
    url = ((mini.get("status") or {}).get("endpoints") or {}).get(component)
    if not url:
        name = mini["metadata"]["name"]
        raise SandboxError(
            f"sandbox {name} has no {component} endpoint yet; run 'sandbox wait {name}' first"
        )
    return url


def delete(target: Target, name: str, *, wait_seconds: float | None = None) -> None:
    """Delete the sandbox (its children go with it); optionally wait until it is gone."""
    namespace = _namespace(target)
    try:
        target.kube.get(naming.API_VERSION, naming.KIND, namespace, name)
        target.kube.delete(naming.API_VERSION, naming.KIND, namespace, name)
    except kube.KubeError as exc:
        raise _wrap(exc, f"deleting sandbox {name}") from exc
    if wait_seconds is None:
        return
    deadline = time.monotonic() + wait_seconds
    while target.kube.find(naming.API_VERSION, naming.KIND, namespace, name) is not None:
        if time.monotonic() >= deadline:
            raise SandboxError(f"sandbox {name} was still there after {wait_seconds:.0f} s")
        time.sleep(0.5)


def _current_ready(mini: Object) -> Object | None:
    """The Ready condition if it speaks of the current generation, else ``None``."""
    ready = conditions.find((mini.get("status") or {}).get("conditions"), conditions.READY)
    generation = mini["metadata"].get("generation")
    if ready is None or (generation and ready.get("observedGeneration", 0) < generation):
        return None
    return ready


def _progress_line(name: str, ready: Object | None) -> str:
    if ready is None:
        return f"{name}: waiting for the operator to report on the current spec"
    return f"{name}: {ready['reason']}: {ready.get('message') or ready['status']}"


def _namespace(target: Target) -> str:
    if target.namespace is None:
        raise SandboxError("this command needs one namespace, not --all-namespaces", exit_code=2)
    return target.namespace


def _context_namespace(files: str, context: str | None) -> str | None:
    contexts, active = kubernetes.config.list_kube_config_contexts(config_file=files)
    chosen = next((c for c in contexts if c["name"] == context), None) if context else active
    return ((chosen or {}).get("context") or {}).get("namespace")


def _read(file: pathlib.Path) -> str | None:
    try:
        return file.read_text().strip() or None
    except OSError:
        return None


def _wrap(exc: kube.KubeError, doing: str) -> SandboxError:
    if isinstance(exc, kube.NotFoundError):
        return SandboxError(f"{doing}: not found ({exc})", exit_code=NOT_FOUND)
    if exc.status in (401, 403):
        return SandboxError(f"{doing}: not allowed ({exc})", exit_code=USAGE)
    return SandboxError(f"{doing}: {exc}", exit_code=FAILED)
