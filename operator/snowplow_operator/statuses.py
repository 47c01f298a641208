"""The SnowplowMini status, built from component states or from the reason nothing was applied.

Condition set (all with ``observedGeneration``):

* ``Ready``: every enabled component is ready for the current generation
  (``AllComponentsReady``); otherwise ``ComponentsNotReady``, ``InvalidSpec``,
  ``ReferenceNotFound`` or ``ReconcileError``.
* ``Progressing``: a creation (``Creating``) or rollout (``RollingOut``) is under way; False
  with ``RolloutComplete`` once everything is ready.
* ``Degraded``: a workload is stuck (``ComponentDegraded``), else False (``AsExpected``).
* one ``<Component>Ready`` per component: ``Available``, ``RollingOut``, ``Unavailable``,
  ``CreatingDataViews``, ``DataViewsFailed``, ``Missing`` or ``Disabled``.
* ``Suspended``: True (``Suspended`` for ``spec.suspend``, ``Expired`` when expiry suspends)
  while every Deployment is at zero replicas on purpose; then Ready is False with the same
  reason. Written only once a SnowplowMini was suspended (False, ``Resumed``, afterwards).

``expiresAt`` is not built here: the reconcile sets it, and ``build`` keeps the previous value
so that a status rebuilt without it never drops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from snowplow_operator import conditions, naming
from snowplow_operator.readiness import ComponentState

Status = dict[str, Any]
SUSPENDED = "Suspended"


def build(
    *,
    generation: int,
    states: Sequence[ComponentState],
    endpoints: dict[str, str],
    previous: Status | None,
    at: str,
    operator_version: str,
    suspended: str | None = None,
) -> Status:
    """The whole status after a successful apply of every child.

    ``suspended`` is the reason the children were scaled to zero on purpose (see
    ``lifecycle.suspension``), or ``None`` when they should run.
    """
    previous = previous or {}
    waiting = [s for s in states if not s.ready]
    stuck = [s for s in states if s.degraded]
    new = [
        _ready(waiting, generation),
        _progressing(waiting, previous, generation),
        _degraded(stuck, generation),
        *(_component(state, generation) for state in states),
    ]
    if suspended is not None:
        new[:2] = _suspended(suspended, waiting, generation)
    if suspended is not None or conditions.find(previous.get("conditions"), SUSPENDED):
        new.append(_suspended_condition(suspended, generation))
    status = {
        "observedGeneration": generation,
        "conditions": conditions.merge(previous.get("conditions"), new, at),
        "components": [_component_entry(state) for state in states],
        "endpoints": endpoints,
        "operatorVersion": operator_version,
    }
    if "expiresAt" in previous:
        status["expiresAt"] = previous["expiresAt"]
    return status


def blocked(
    *,
    generation: int,
    reason: str,
    problems: Sequence[str],
    previous: Status | None,
    at: str,
    operator_version: str,
) -> Status:
    """The status when the spec cannot be applied; the children are left as they were.

    Component conditions keep their older ``observedGeneration``: they describe children that
    still run the last spec that could be applied.
    """
    previous = previous or {}
    message = "; ".join(problems)
    new = [
        conditions.make(
            conditions.READY, False, reason=reason, message=message, generation=generation
        ),
        conditions.make(
            conditions.PROGRESSING,
            False,
            reason=reason,
            message="nothing is rolled out until the problems in Ready are fixed",
            generation=generation,
        ),
    ]
    return {
        **previous,
        "observedGeneration": generation,
        "conditions": conditions.merge(previous.get("conditions"), new, at),
        "operatorVersion": operator_version,
    }


def _suspended(
    reason: str, waiting: Sequence[ComponentState], generation: int
) -> list[conditions.Condition]:
    """Ready and Progressing of a SnowplowMini scaled to zero on purpose."""
    why = "spec.suspend is true" if reason == "Suspended" else "the sandbox expired"
    scaling = [s.component for s in waiting]
    progress = f"scaling down {', '.join(scaling)}" if scaling else "every component is at zero"
    return [
        conditions.make(
            conditions.READY,
            False,
            reason=reason,
            message=f"{why}: every component is scaled to zero; the data is kept",
            generation=generation,
        ),
        conditions.make(
            conditions.PROGRESSING,
            bool(scaling),
            reason=reason,
            message=progress,
            generation=generation,
        ),
    ]


def _suspended_condition(reason: str | None, generation: int) -> conditions.Condition:
    if reason is None:
        return conditions.make(
            SUSPENDED, False, reason="Resumed", message="", generation=generation
        )
    return conditions.make(
        SUSPENDED, True, reason=reason, message="scaled to zero", generation=generation
    )


def _ready(waiting: Sequence[ComponentState], generation: int) -> conditions.Condition:
    if not waiting:
        return conditions.make(
            conditions.READY,
            True,
            reason="AllComponentsReady",
            message="all components are ready",
            generation=generation,
        )
    message = "waiting for " + ", ".join(f"{s.component} ({s.message})" for s in waiting)
    return conditions.make(
        conditions.READY, False, reason="ComponentsNotReady", message=message, generation=generation
    )


def _progressing(
    waiting: Sequence[ComponentState], previous: Status, generation: int
) -> conditions.Condition:
    if not waiting:
        return conditions.make(
            conditions.PROGRESSING,
            False,
            reason="RolloutComplete",
            message="every component runs the current spec",
            generation=generation,
        )
    # Creating until the mini was Ready once; any later wait is a rollout of a change.
    before = previous.get("conditions")
    was_ready = conditions.is_true(before, conditions.READY) or (
        (conditions.find(before, conditions.PROGRESSING) or {}).get("reason")
        in ("RollingOut", "RolloutComplete")
    )
    reason = "RollingOut" if was_ready else "Creating"
    names = ", ".join(s.component for s in waiting)
    return conditions.make(
        conditions.PROGRESSING,
        True,
        reason=reason,
        message=f"waiting for {names}",
        generation=generation,
    )


def _degraded(stuck: Sequence[ComponentState], generation: int) -> conditions.Condition:
    if not stuck:
        return conditions.make(
            conditions.DEGRADED, False, reason="AsExpected", message="", generation=generation
        )
    message = "; ".join(f"{s.component}: {s.message}" for s in stuck)
    return conditions.make(
        conditions.DEGRADED,
        True,
        reason="ComponentDegraded",
        message=message,
        generation=generation,
    )


def _component(state: ComponentState, generation: int) -> conditions.Condition:
    return conditions.make(
        naming.condition_type(state.component),
        state.ready,
        reason=state.reason,
        message=state.message,
        generation=generation,
    )


def _component_entry(state: ComponentState) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": state.component,
        "ready": state.ready,
        "enabled": state.enabled,
        "workload": state.workload,
        "readyReplicas": state.ready_replicas,
        "message": state.message,
    }
    if state.config_hash:
        entry["configHash"] = state.config_hash
    if state.image:
        entry["image"] = state.image
    return entry


def merge_patch(old: Status, new: Status) -> Status:
    """A JSON merge patch turning ``old`` into ``new``: removed keys become ``None``.

    Lists are replaced whole, as merge patches do (conditions are written as one list).
    """
    patch: Status = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = merge_patch(before, value)
        elif value != before:
            patch[key] = value
    return patch
