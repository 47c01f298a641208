"""What the operator last saw of each child (from its watches) and last applied to it.

Together they let a reconcile skip the server-side apply of a child that is provably as we
left it: we applied this exact manifest, and the child has not changed since, judged by its
uid and ``generation`` (workloads, whose status changes all the time) or ``resourceVersion``
(everything else). A child deleted, recreated or edited by hand fails that test and is applied
again. Records expire after a while, so labels or annotations edited by hand (which move no
generation) are still taken back by a periodic full apply.

The index is written from the event loop (kopf's watch handlers) and read from reconcile
threads, hence the lock. Stored bodies drop ``managedFields``, the bulk of an object.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

Object = dict[str, Any]
Key = tuple[str, str, str]  # (namespace, kind, name)
GENERATION_KINDS = ("Deployment", "Job")


def key_of(body: Object) -> Key:
    meta = body["metadata"]
    return (meta["namespace"], body["kind"], meta["name"])


def fingerprint(body: Object) -> tuple[str, str]:
    meta = body["metadata"]
    version = meta.get("generation") if body["kind"] in GENERATION_KINDS else None
    return (meta.get("uid", ""), str(version or meta.get("resourceVersion", "")))


def digest(manifest: Object) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


class ChildIndex:
    def __init__(self, *, max_age_seconds: float) -> None:
        self._max_age_seconds = max_age_seconds
        self._seen: dict[Key, Object] = {}
        self._applied: dict[Key, tuple[str, tuple[str, str], float]] = {}
        self._lock = threading.Lock()

    def saw(self, body: Object) -> None:
        """A watch event showed this child (ADDED, MODIFIED or listed)."""
        slim = {**body, "metadata": {**body["metadata"], "managedFields": None}}
        with self._lock:
            self._seen[key_of(body)] = slim

    def gone(self, body: Object) -> None:
        with self._lock:
            self._seen.pop(key_of(body), None)

    def applied(self, manifest: Object, result: Object) -> None:
        """We applied ``manifest`` and the API server returned ``result``."""
        with self._lock:
            self._applied[key_of(manifest)] = (
                digest(manifest),
                fingerprint(result),
                time.monotonic(),
            )

    def unchanged(self, manifest: Object) -> Object | None:
        """The watched child if applying ``manifest`` again is provably a no-op, else None."""
        key = key_of(manifest)
        with self._lock:
            seen = self._seen.get(key)
            record = self._applied.get(key)
        if seen is None or record is None:
            return None
        applied_digest, applied_fingerprint, at = record
        if time.monotonic() - at > self._max_age_seconds:
            return None
        if applied_digest != digest(manifest) or applied_fingerprint != fingerprint(seen):
            return None
        return seen

    def forget(self, namespace: str, name_prefix: str) -> None:
        """Drop the records of one mini's children (the mini is gone)."""
        with self._lock:
            for key in [
                k for k in self._applied if k[0] == namespace and k[2].startswith(name_prefix)
            ]:
                self._applied.pop(key, None)
