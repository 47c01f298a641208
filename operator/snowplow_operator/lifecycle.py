"""Expiry and suspension of a SnowplowMini: pure arithmetic and decisions, no I/O.

A SnowplowMini expires at the earliest of ``creationTimestamp + spec.lifecycle.ttl``,
``spec.lifecycle.expiresAt`` and ``creationTimestamp + `` the operator-wide maximum TTL (when
one is set, it caps every sandbox, also those that ask for no expiry). The reconcile writes
that instant to ``status.expiresAt``; the sweeper (``sweeping``) warns shortly before it and,
at it, deletes the SnowplowMini or suspends it, as the operator is configured.

Suspended (``spec.suspend``, or expired in suspend mode) means every Deployment scaled to zero
replicas and no Job started; Services, ConfigMaps and the Elasticsearch volume claim stay, so
resuming finds the data where it was.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import enum
import re
from collections.abc import Sequence
from typing import Any

Object = dict[str, Any]

_DURATION_PART = re.compile(r"([0-9]+)(s|m|h|d)")
_DURATION = re.compile(r"^([0-9]+(s|m|h|d))+$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

SUSPENDED = "Suspended"  # spec.suspend is true
EXPIRED = "Expired"  # expired while the operator suspends instead of deleting


class ExpiryAction(enum.StrEnum):
    DELETE = "delete"
    SUSPEND = "suspend"


class Due(enum.Enum):
    NOTHING = "nothing"
    WARN = "warn"
    EXPIRE = "expire"


@dataclasses.dataclass(frozen=True)
class Policy:
    """The operator-wide expiry settings."""

    max_ttl_seconds: float | None = None
    warning_seconds: float = 600.0
    action: ExpiryAction = ExpiryAction.DELETE


def parse_duration(text: str) -> datetime.timedelta:
    """``72h``, ``1h30m``, ``7d``, ``45s`` as a timedelta; ``ValueError`` for anything else."""
    if not _DURATION.match(text):
        raise ValueError(f"got {text[:40]!r}, expected a duration like 72h, 1h30m or 7d")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return datetime.timedelta(seconds=seconds)


def parse_time(text: str) -> datetime.datetime:
    """An RFC 3339 date-time as the API server stores it, as an aware datetime in UTC."""
    parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    """Whole seconds in UTC, as the API server writes times (rounded up, never earlier)."""
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + datetime.timedelta(seconds=1)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expires_at(body: Object, policy: Policy) -> datetime.datetime | None:
    """When this SnowplowMini expires, or ``None`` when it never does.

    A ttl or expiresAt that cannot be read (an outdated CRD let it through) is ignored here;
    ``specs.parse`` reports it as an invalid spec.
    """
    created_text = body.get("metadata", {}).get("creationTimestamp")
    if not created_text:
        return None
    created = parse_time(created_text)
    lifecycle = (body.get("spec") or {}).get("lifecycle") or {}
    candidates = []
    if lifecycle.get("ttl"):
        with contextlib.suppress(ValueError):
            candidates.append(created + parse_duration(lifecycle["ttl"]))
    if lifecycle.get("expiresAt"):
        with contextlib.suppress(ValueError):
            candidates.append(parse_time(lifecycle["expiresAt"]))
    if policy.max_ttl_seconds:
        candidates.append(created + datetime.timedelta(seconds=policy.max_ttl_seconds))
    return min(candidates) if candidates else None


def due(expiry: datetime.datetime | None, now: datetime.datetime, *, warning_seconds: float) -> Due:
    """What the sweeper owes a SnowplowMini expiring at ``expiry`` at ``now``."""
    if expiry is None:
        return Due.NOTHING
    if now >= expiry:
        return Due.EXPIRE
    if now >= expiry - datetime.timedelta(seconds=warning_seconds):
        return Due.WARN
    return Due.NOTHING


def suspension(
    *, suspend: bool, expiry: datetime.datetime | None, now: datetime.datetime, policy: Policy
) -> str | None:
    """Why the SnowplowMini runs no pods (``SUSPENDED``, ``EXPIRED``), or ``None`` if it runs."""
    if suspend:
        return SUSPENDED
    if policy.action is ExpiryAction.SUSPEND and expiry is not None and now >= expiry:
        return EXPIRED
    return None


def scaled_to_zero(manifests: Sequence[Object]) -> list[Object]:
    """The children of a suspended SnowplowMini: Deployments at zero replicas, no Jobs.

    Everything else (Services, ConfigMaps, Secrets, the volume claim) is kept as rendered, so
    resuming changes nothing but the replica counts. An existing Job is left alone, not deleted.
    """
    kept = []
    for manifest in manifests:
        if manifest["kind"] == "Job":
            continue
        if manifest["kind"] in ("Deployment", "StatefulSet"):
            manifest = copy.deepcopy(manifest)
            manifest["spec"]["replicas"] = 0
        kept.append(manifest)
    return kept
