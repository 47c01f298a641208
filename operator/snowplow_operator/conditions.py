"""Conditions in the Kubernetes shape (``metav1.Condition``), and how a new set replaces the old.

Each condition carries ``observedGeneration``: ``kubectl wait --for=condition=Ready`` treats a
condition written for an older generation as not met, so after a spec change it waits for the
new one. ``lastTransitionTime`` moves only when the status flips; a changed reason or message
alone keeps it, so a status rewritten with the same facts is byte-for-byte the same status and
no write (and no watch event) follows.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"

Condition = dict[str, Any]


def now() -> str:
    """The current time as the API server writes it (UTC, whole seconds)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make(
    type_: str, status: bool | None, *, reason: str, message: str, generation: int
) -> Condition:
    """A condition without ``lastTransitionTime`` (``merge`` fills it in)."""
    return {
        "type": type_,
        "status": "Unknown" if status is None else ("True" if status else "False"),
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def find(conditions: Iterable[Condition] | None, type_: str) -> Condition | None:
    return next((c for c in conditions or () if c.get("type") == type_), None)


def is_true(conditions: Iterable[Condition] | None, type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.get("status") == "True"


def merge(old: Sequence[Condition] | None, new: Sequence[Condition], at: str) -> list[Condition]:
    """``new`` in its order, then the old conditions it does not mention, unchanged.

    A condition keeps its ``lastTransitionTime`` unless its status differs from the old one;
    a condition seen for the first time gets ``at``.
    """
    merged: list[Condition] = []
    for condition in new:
        previous = find(old, condition["type"])
        unchanged = previous is not None and previous.get("status") == condition["status"]
        since = previous.get("lastTransitionTime") if unchanged and previous else None
        merged.append({**condition, "lastTransitionTime": since or at})
    mentioned = {condition["type"] for condition in new}
    merged += [c for c in old or () if c.get("type") not in mentioned]
    return merged


def transitions(
    old: Sequence[Condition] | None, new: Sequence[Condition]
) -> list[tuple[Condition | None, Condition]]:
    """The conditions of ``new`` whose status differs from ``old`` (for Events)."""
    changed = []
    for condition in new:
        previous = find(old, condition["type"])
        if previous is None or previous.get("status") != condition["status"]:
            changed.append((previous, condition))
    return changed
