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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from snowplow_operator import conditions, naming
from snowplow_operator.readiness import ComponentState

Status = dict[str, Any]


def build(
    *,
    generation: int,
    states: Sequence[ComponentState],
    endpoints: dict[str, str],
    previous: Status | None,
    at: str,
    operator_version: str,
) -> Status:
    """The whole status after a successful apply of every child."""
    previous = previous or {}
    waiting = [s for s in states if not s.ready]
    stuck = [s for s in states if s.degraded]
    new = [
        _ready(waiting, generation),
        _progressing(waiting, previous, generation),
        _degraded(stuck, generation),
        *(_component(state, generation) for state in states),
    ]
    return {
        "observedGeneration": generation,
        "conditions": conditions.merge(previous.get("conditions"), new, at),
        "components": [_component_entry(state) for state in states],
        "endpoints": endpoints,
        "operatorVersion": operator_version,
    }


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
