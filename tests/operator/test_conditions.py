"""Merging conditions, and the status built from component states."""

from __future__ import annotations

from snowplow_operator import conditions, readiness, statuses

T0 = "2030-01-01T00:00:00Z"
T1 = "2030-01-01T00:01:00Z"


def test_merge_keeps_the_transition_time_while_the_status_holds() -> None:
    old = conditions.merge(
        [], [conditions.make("Ready", False, reason="A", message="a", generation=1)], T0
    )

    new = conditions.merge(
        old, [conditions.make("Ready", False, reason="B", message="b", generation=2)], T1
    )

    assert new == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "B",
            "message": "b",
            "observedGeneration": 2,
            "lastTransitionTime": T0,
        }
    ]


def test_merge_moves_the_transition_time_when_the_status_flips() -> None:
    old = conditions.merge(
        [], [conditions.make("Ready", False, reason="A", message="", generation=1)], T0
    )

    new = conditions.merge(
        old, [conditions.make("Ready", True, reason="A", message="", generation=1)], T1
    )

    assert new[0]["lastTransitionTime"] == T1


def test_merge_keeps_conditions_it_was_not_given() -> None:
    old = [
        {"type": "Other", "status": "True", "reason": "X", "message": "", "lastTransitionTime": T0}
    ]

    new = conditions.merge(
        old, [conditions.make("Ready", None, reason="R", message="", generation=1)], T1
    )

    assert [(c["type"], c["status"]) for c in new] == [("Ready", "Unknown"), ("Other", "True")]


def deployment(*, generation: int, observed: int, updated: int, available: int, total: int) -> dict:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": 1, "template": {"metadata": {}, "spec": {"containers": [{}]}}},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "readyReplicas": available,
            "replicas": total,
        },
    }


def test_deployment_not_yet_seen_by_its_controller_is_rolling_out() -> None:
    state = readiness.of_deployment(
        "collector",
        "dev-collector",
        deployment(generation=2, observed=1, updated=1, available=1, total=1),
    )

    assert (state.ready, state.reason) == (False, "RollingOut")


def test_deployment_with_old_pods_left_is_rolling_out() -> None:
    state = readiness.of_deployment(
        "collector",
        "dev-collector",
        deployment(generation=2, observed=2, updated=1, available=1, total=2),
    )

    assert (state.ready, state.reason) == (False, "RollingOut")


def test_deployment_with_every_replica_updated_and_available_is_ready() -> None:
    state = readiness.of_deployment(
        "collector",
        "dev-collector",
        deployment(generation=2, observed=2, updated=1, available=1, total=1),
    )

    assert (state.ready, state.reason, state.message) == (
        True,
        "Available",
        "1 of 1 replicas available",
    )


def test_kibana_waits_for_its_data_views_job() -> None:
    ready = readiness.ComponentState("kibana", "dev-kibana", True, "Available", "")

    running = readiness.with_job(ready, {"status": {}}, job_name="dev-kibana-data-views")
    failed = readiness.with_job(
        ready, {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}, job_name="j"
    )

    assert (running.ready, running.reason) == (False, "CreatingDataViews")
    assert (failed.ready, failed.degraded, failed.reason) == (False, True, "DataViewsFailed")


def build(states: list[readiness.ComponentState], previous: dict | None = None) -> dict:
    return statuses.build(
        generation=3,
        states=states,
        endpoints={"collector": "http://c"},
        previous=previous,
        at=T0,
        operator_version="1.2.3",
    )


def test_status_of_ready_components_is_ready_for_the_current_generation() -> None:
    states = [readiness.ComponentState("sink-good", "dev-sink-good", True, "Available", "ok")]

    status = build(states)

    summary = {
        c["type"]: (c["status"], c["reason"], c["observedGeneration"]) for c in status["conditions"]
    }
    assert summary == {
        "Ready": ("True", "AllComponentsReady", 3),
        "Progressing": ("False", "RolloutComplete", 3),
        "Degraded": ("False", "AsExpected", 3),
        "SinkGoodReady": ("True", "Available", 3),
    }
    assert status["observedGeneration"] == 3


def test_waiting_after_being_ready_is_a_rollout_not_a_creation() -> None:
    waiting = [readiness.ComponentState("enrich", "dev-enrich", False, "RollingOut", "1 of 1")]

    first = build(waiting)
    ready = build([readiness.ComponentState("enrich", "dev-enrich", True, "Available", "")], first)
    later = build(waiting, ready)

    assert conditions.find(first["conditions"], "Progressing")["reason"] == "Creating"
    assert conditions.find(later["conditions"], "Progressing")["reason"] == "RollingOut"
    assert conditions.find(later["conditions"], "Ready")["message"] == "waiting for enrich (1 of 1)"


def test_blocked_status_names_the_problem_and_keeps_component_conditions() -> None:
    previous = build([readiness.ComponentState("enrich", "dev-enrich", True, "Available", "")])

    status = statuses.blocked(
        generation=4,
        reason="InvalidSpec",
        problems=["spec.a: got 1, expected 2", "spec.b: missing"],
        previous=previous,
        at=T1,
        operator_version="1.2.3",
    )

    ready = conditions.find(status["conditions"], "Ready")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "False",
        "InvalidSpec",
        4,
    )
    assert ready["message"] == "spec.a: got 1, expected 2; spec.b: missing"
    assert conditions.find(status["conditions"], "EnrichReady")["observedGeneration"] == 3


def test_status_merge_patch_removes_what_is_gone_and_keeps_what_is_equal() -> None:
    old = {"endpoints": {"collector": "c", "kibana": "k"}, "observedGeneration": 1, "x": 1}
    new = {"endpoints": {"collector": "c"}, "observedGeneration": 2}

    assert statuses.merge_patch(old, new) == {
        "x": None,
        "endpoints": {"kibana": None},
        "observedGeneration": 2,
    }
