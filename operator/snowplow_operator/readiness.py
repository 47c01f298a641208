"""Readiness of each component, read from its child objects as the API server returned them.

A Deployment is ready when its controller has seen the current generation, every replica runs
the current pod template (no old pods left) and the replicas are available. That is what makes
Ready follow the new generation after a change: until the rollout is over, the component and
hence the SnowplowMini are not Ready. Kibana is ready only once the data views Job succeeded.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from snowplow_operator import naming

Object = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ComponentState:
    component: str
    workload: str
    ready: bool
    reason: str
    message: str
    degraded: bool = False
    ready_replicas: int = 0
    config_hash: str | None = None
    image: str | None = None
    enabled: bool = True


def disabled(component: str, workload: str) -> ComponentState:
    return ComponentState(
        component,
        workload,
        ready=True,
        reason="Disabled",
        message="disabled in the spec",
        enabled=False,
    )


def of_deployment(component: str, workload: str, deployment: Object | None) -> ComponentState:
    if deployment is None:
        return ComponentState(
            component, workload, False, "Missing", f"Deployment {workload} is missing"
        )
    spec = deployment.get("spec", {})
    status = deployment.get("status", {})
    wanted = spec.get("replicas", 1)
    template = spec.get("template", {})
    facts = {
        "ready_replicas": status.get("readyReplicas", 0),
        "config_hash": template.get("metadata", {})
        .get("annotations", {})
        .get(naming.CONFIG_HASH_ANNOTATION),
        "image": (template.get("spec", {}).get("containers") or [{}])[0].get("image"),
        "degraded": _is_stuck(status),
    }
    seen = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)

    if not seen or updated < wanted or total > updated:
        message = f"rolling out: {updated} of {wanted} replicas updated, {total} running"
        return ComponentState(component, workload, False, "RollingOut", message, **facts)
    if available < wanted:
        message = f"{available} of {wanted} replicas available"
        return ComponentState(component, workload, False, "Unavailable", message, **facts)
    return ComponentState(
        component,
        workload,
        True,
        "Available",
        f"{available} of {wanted} replicas available",
        **facts,
    )


def with_job(state: ComponentState, job: Object | None, *, job_name: str) -> ComponentState:
    """Kibana's state once its data views Job is taken into account."""
    if not state.ready:
        return state
    job_status = (job or {}).get("status", {})
    conditions = {c.get("type"): c.get("status") for c in job_status.get("conditions", [])}
    if conditions.get("Complete") == "True":
        return state
    if conditions.get("Failed") == "True":
        message = f"Job {job_name} failed to create the good and bad data views"
        return dataclasses.replace(
            state, ready=False, degraded=True, reason="DataViewsFailed", message=message
        )
    message = f"Job {job_name} is creating the good and bad data views"
    return dataclasses.replace(state, ready=False, reason="CreatingDataViews", message=message)


def _is_stuck(status: Object) -> bool:
    for condition in status.get("conditions", []):
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return True
        if (
            condition.get("type") == "Progressing"
            and condition.get("status") == "False"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return True
    return False
