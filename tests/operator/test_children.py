"""The child index: when a reconcile may skip applying a child."""

from __future__ import annotations

from snowplow_operator import children

MANIFEST = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "dev-enrich", "namespace": "ns"},
    "spec": {"replicas": 1},
}


def stored(*, uid: str = "u1", generation: int = 1, version: str = "10") -> dict:
    meta = {
        **MANIFEST["metadata"],
        "uid": uid,
        "generation": generation,
        "resourceVersion": version,
    }
    return {**MANIFEST, "metadata": meta, "status": {"readyReplicas": 1}}


def index_after_apply() -> children.ChildIndex:
    index = children.ChildIndex(max_age_seconds=300)
    index.applied(MANIFEST, stored())
    return index


def test_child_seen_as_we_applied_it_is_skipped_even_after_status_changes() -> None:
    index = index_after_apply()

    index.saw(stored(version="11"))

    assert index.unchanged(MANIFEST)["status"] == {"readyReplicas": 1}


def test_child_edited_by_hand_is_applied_again() -> None:
    index = index_after_apply()

    index.saw(stored(generation=2))

    assert index.unchanged(MANIFEST) is None


def test_child_deleted_or_recreated_is_applied_again() -> None:
    index = index_after_apply()
    index.saw(stored())

    index.gone(stored())
    deleted = index.unchanged(MANIFEST)
    index.saw(stored(uid="u2"))
    recreated = index.unchanged(MANIFEST)

    assert (deleted, recreated) == (None, None)


def test_a_different_manifest_is_applied() -> None:
    index = index_after_apply()
    index.saw(stored())

    changed = {**MANIFEST, "spec": {"replicas": 2}}

    assert index.unchanged(changed) is None


def test_records_expire_so_a_full_apply_happens_periodically() -> None:
    index = children.ChildIndex(max_age_seconds=0)
    index.applied(MANIFEST, stored())
    index.saw(stored())

    assert index.unchanged(MANIFEST) is None


def test_config_maps_are_compared_by_resource_version() -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns"},
    }
    seen = {**manifest, "metadata": {**manifest["metadata"], "uid": "u", "resourceVersion": "5"}}
    index = children.ChildIndex(max_age_seconds=300)
    index.applied(manifest, seen)

    index.saw({**seen, "metadata": {**seen["metadata"], "resourceVersion": "6"}})

    assert index.unchanged(manifest) is None
