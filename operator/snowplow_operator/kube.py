"""The Kubernetes API boundary: the few calls the reconciler makes, on plain dicts.

Children are written with server-side apply under one field manager, with ``force``: applying
the same manifest again changes nothing (no new resourceVersion, no rollout), and a field that
someone edited by hand is taken back. The official client's generated models are not used;
manifests stay plain dicts from rendering to the wire.

Every failure leaves this module as ``KubeError`` (or ``NotFoundError``/``InvalidError``) with
the HTTP status, so callers decide between retrying and reporting without knowing the client.
The calls are blocking; the reconciler runs them in worker threads.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
from typing import Any

import kubernetes
import urllib3

from snowplow_operator import naming

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 30.0
PLURALS = {
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Event": "events",
    "Deployment": "deployments",
    "Job": "jobs",
    naming.KIND: naming.PLURAL,
}


class KubeError(Exception):
    """A call to the API server failed; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(KubeError):
    pass


class InvalidError(KubeError):
    """The API server refused the object as invalid (422), e.g. an immutable field changed."""


def path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    collection = f"{root}/namespaces/{namespace}/{PLURALS[kind]}"
    return f"{collection}/{name}" if name else collection


def load_configuration(kubeconfig: str | None = None) -> kubernetes.client.Configuration:
    """Credentials from ``kubeconfig``, else in-cluster, else the default kubeconfig.

    Both the operator's own client and kopf's watches log in with this configuration.
    """
    configuration = kubernetes.client.Configuration()
    if kubeconfig:
        kubernetes.config.load_kube_config(kubeconfig, client_configuration=configuration)
    else:
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=configuration)
    # Reconciles run in several threads at once; each needs its own pooled connection.
    configuration.connection_pool_maxsize = 16
    return configuration


def load_client(kubeconfig: str | None = None) -> kubernetes.client.ApiClient:
    return kubernetes.client.ApiClient(load_configuration(kubeconfig))


class Kube:
    """Blocking calls on one ``ApiClient``; safe to share between threads."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.api = api

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self._call("GET", path(api_version, kind, namespace, name))

    def find(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.get(api_version, kind, namespace, name)
        except NotFoundError:
            return None

    def apply(
        self, manifest: dict[str, Any], *, field_manager: str = naming.MANAGER
    ) -> dict[str, Any]:
        """Server-side apply ``manifest`` as ``field_manager``; returns the stored object."""
        meta = manifest["metadata"]
        return self._call(
            "PATCH",
            path(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"]),
            body=manifest,
            content_type="application/apply-patch+yaml",
            query=[("fieldManager", field_manager), ("force", "true")],
        )

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None, *, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of one kind in ``namespace`` (``None``: all namespaces) matching ``selector``."""
        if namespace is None:
            root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            resource_path = f"{root}/{PLURALS[kind]}"
        else:
            resource_path = path(api_version, kind, namespace)
        query = [("labelSelector", selector)] if selector else []
        return self._call("GET", resource_path, query=query).get("items", [])

    def delete(
        self, api_version: str, kind: str, namespace: str, name: str, *, uid: str | None = None
    ) -> None:
        """Delete with background propagation; an object already gone is not an error.

        With ``uid``, only that very object is deleted (a 409 ``KubeError`` if the name now
        belongs to another one).
        """
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        with contextlib.suppress(NotFoundError):
            self._call("DELETE", path(api_version, kind, namespace, name), body=body)

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource with ``patch`` (``None`` removes a field)."""
        return self._call(
            "PATCH",
            path(naming.API_VERSION, naming.KIND, namespace, name) + "/status",
            body={"status": patch},
            content_type="application/merge-patch+json",
        )

    def post_event(self, mini: dict[str, Any], *, type_: str, reason: str, message: str) -> None:
        """Record a core/v1 Event on the SnowplowMini; failures are logged, never raised."""
        meta = mini["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": naming.API_VERSION,
                "kind": naming.KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": naming.MANAGER},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._call("POST", path("v1", "Event", meta["namespace"]), body=event)
        except KubeError as exc:
            logger.warning("Posting the %s event on %s failed: %s.", reason, meta["name"], exc)

    def _call(
        self,
        method: str,
        resource_path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        try:
            response = self.api.call_api(
                resource_path,
                method,
                query_params=query or [],
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except kubernetes.client.ApiException as exc:
            raise _wrap(exc, method, resource_path) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(f"{method} {resource_path}: {exc}") from exc
        return json.loads(response.data) if response.data else {}


def _wrap(exc: kubernetes.client.ApiException, method: str, resource_path: str) -> KubeError:
    try:
        message = json.loads(exc.body).get("message", exc.reason)
    except (TypeError, ValueError):
        message = exc.reason
    text = f"{method} {resource_path}: {exc.status} {message}"
    if exc.status == 404:
        return NotFoundError(text, status=404)
    if exc.status == 422:
        return InvalidError(text, status=422)
    return KubeError(text, status=exc.status or 0)
