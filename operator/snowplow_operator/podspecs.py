"""Pieces of pod specs shared by every child workload: security, resources, probes, metadata.

Every pod meets the "restricted" Pod Security Standard: it runs as a fixed non-root user,
drops every capability, forbids privilege escalation and uses the runtime's default seccomp
profile. The user ids are fixed per image (the official Elasticsearch and Kibana images run as
1000) because the kubelet cannot check ``runAsNonRoot`` against an image whose USER is a name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from snowplow_operator import naming, specs

PIPELINE_UID = 10001
ELASTIC_UID = 1000
NSQ_UID = 65534


@dataclasses.dataclass(frozen=True)
class Amounts:
    """Default requests and limits of one container (``None``: not set)."""

    cpu_request: str | None
    memory_request: str | None
    cpu_limit: str | None
    memory_limit: str | None


def resources(given: specs.Resources, default: Amounts) -> dict[str, Any]:
    """Requests and limits: each amount from the spec if given, else the default."""
    requests = {
        "cpu": given.requests.cpu or default.cpu_request,
        "memory": given.requests.memory or default.memory_request,
    }
    limits = {
        "cpu": given.limits.cpu or default.cpu_limit,
        "memory": given.limits.memory or default.memory_limit,
    }
    result = {
        "requests": {k: v for k, v in requests.items() if v},
        "limits": {k: v for k, v in limits.items() if v},
    }
    return {k: v for k, v in result.items() if v}


def pod_security(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security(*, read_only_root: bool) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
    }


def http_probe(path: str, port: str, *, period_seconds: int = 10) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period_seconds,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }


def owner_reference(*, name: str, uid: str) -> dict[str, Any]:
    """Makes the child garbage-collected with its SnowplowMini (no finalizer involved)."""
    return {
        "apiVersion": naming.API_VERSION,
        "kind": naming.KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def env_list(env: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in env.items()]
