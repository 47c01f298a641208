"""Expiry arithmetic and suspension decisions (pure)."""

from __future__ import annotations

import datetime

import pytest

from snowplow_operator import lifecycle, readiness, rendering, specs, statuses

T0 = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)


def mini(**lifecycle_spec: str) -> dict:
    return {
        "metadata": {"creationTimestamp": "2030-01-01T12:00:00Z"},
        "spec": {"lifecycle": lifecycle_spec},
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("72h", 259200), ("1h30m", 5400), ("7d", 604800), ("1d2h3m4s", 93784)],
)
def test_durations_are_read_like_the_crd_pattern(text: str, seconds: int) -> None:
    assert lifecycle.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "72", "1.5h", "h", "3w", "-1h"])
def test_unreadable_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration like 72h"):
        lifecycle.parse_duration(text)


def test_ttl_counts_from_creation() -> None:
    expiry = lifecycle.expires_at(mini(ttl="2h"), lifecycle.Policy())

    assert expiry == T0 + datetime.timedelta(hours=2)


def test_expires_at_is_taken_as_given() -> None:
    expiry = lifecycle.expires_at(mini(expiresAt="2030-01-02T00:00:00Z"), lifecycle.Policy())

    assert lifecycle.format_time(expiry) == "2030-01-02T00:00:00Z"


def test_operator_max_ttl_caps_a_longer_ttl_and_an_unlimited_sandbox() -> None:
    policy = lifecycle.Policy(max_ttl_seconds=3600)

    assert lifecycle.expires_at(mini(ttl="72h"), policy) == T0 + datetime.timedelta(hours=1)
    assert lifecycle.expires_at(mini(), policy) == T0 + datetime.timedelta(hours=1)
    assert lifecycle.expires_at(mini(ttl="10m"), policy) == T0 + datetime.timedelta(minutes=10)


def test_no_lifecycle_and_no_cap_never_expires() -> None:
    assert lifecycle.expires_at(mini(), lifecycle.Policy()) is None


@pytest.mark.parametrize(
    ("now_offset_seconds", "expected"),
    [
        (-601, lifecycle.Due.NOTHING),
        (-600, lifecycle.Due.WARN),
        (-1, lifecycle.Due.WARN),
        (0, lifecycle.Due.EXPIRE),
        (3600, lifecycle.Due.EXPIRE),
    ],
    ids=["before-warning", "warning-starts", "just-before", "at-expiry", "long-after"],
)
def test_what_is_due_around_expiry(now_offset_seconds: int, expected: lifecycle.Due) -> None:
    now = T0 + datetime.timedelta(seconds=now_offset_seconds)

    assert lifecycle.due(T0, now, warning_seconds=600) is expected


def test_expiry_suspends_only_in_suspend_mode() -> None:
    suspend_mode = lifecycle.Policy(action=lifecycle.ExpiryAction.SUSPEND)
    later = T0 + datetime.timedelta(seconds=1)

    assert lifecycle.suspension(suspend=False, expiry=T0, now=later, policy=suspend_mode) == (
        "Expired"
    )
    assert lifecycle.suspension(suspend=False, expiry=T0, now=later, policy=lifecycle.Policy()) is (
        None
    )
    assert lifecycle.suspension(
        suspend=True, expiry=None, now=later, policy=lifecycle.Policy()
    ) == ("Suspended")


def test_suspended_children_keep_everything_but_run_no_pod() -> None:
    spec = specs.parse({"elasticsearch": {"storage": {"persistent": True}}})
    manifests = rendering.render(
        rendering.Mini(name="dev", namespace="ns", uid="u", spec=spec), api_keys={}
    )

    suspended = lifecycle.scaled_to_zero(manifests)

    kinds = sorted({m["kind"] for m in suspended})
    assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Secret", "Service"]
    assert {m["spec"]["replicas"] for m in suspended if m["kind"] == "Deployment"} == {0}
    assert {m["spec"]["replicas"] for m in manifests if m["kind"] == "Deployment"} == {1}


def test_suspended_status_is_not_ready_and_says_why() -> None:
    zero = readiness.ComponentState("enrich", "dev-enrich", True, "Available", "0 of 0")

    status = statuses.build(
        generation=2,
        states=[zero],
        endpoints={},
        previous={"expiresAt": "2030-01-01T00:00:00Z"},
        at="2030-01-01T00:00:00Z",
        operator_version="1",
        suspended="Suspended",
    )

    summary = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert summary["Ready"] == ("False", "Suspended")
    assert summary["Progressing"] == ("False", "Suspended")
    assert summary["Suspended"] == ("True", "Suspended")
    assert status["expiresAt"] == "2030-01-01T00:00:00Z"


def test_resumed_status_flips_suspended_to_false() -> None:
    zero = readiness.ComponentState("enrich", "dev-enrich", True, "Available", "1 of 1")
    common = {"generation": 3, "states": [zero], "endpoints": {}, "operator_version": "1"}
    before = statuses.build(**common, previous=None, at="2030-01-01T00:00:00Z", suspended="Expired")

    after = statuses.build(**common, previous=before, at="2030-01-01T00:01:00Z")

    summary = {c["type"]: (c["status"], c["reason"]) for c in after["conditions"]}
    assert summary["Ready"] == ("True", "AllComponentsReady")
    assert summary["Suspended"] == ("False", "Resumed")
