"""The expiry sweeper: one operator-level loop over every SnowplowMini, no per-object timers.

kopf timers and daemons would put a finalizer on every SnowplowMini (and run a task per
object); a finalizer makes deleting a sandbox or its namespace hang whenever the operator is
down. So the watch handler feeds this sweeper the latest body of each SnowplowMini, and one
task calls ``sweep`` every few seconds:

* within ``Policy.warning_seconds`` of ``expiresAt``: a Warning Event ``ExpiringSoon``, once
  per SnowplowMini and expiry instant (the memory is the process's: an operator restarted
  inside the warning window warns again);
* at ``expiresAt``: a Warning Event ``Expired``, then either the SnowplowMini is deleted (with
  its uid as a precondition, so a new sandbox of the same name is never hit) and the garbage
  collector removes its children, or, in suspend mode, a reconcile is asked for, which sees
  the expiry and scales the children to zero.

The expiry instant is computed with ``lifecycle.expires_at``, exactly as the reconcile
computes ``status.expiresAt``, so the two always agree.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

from snowplow_operator import kube, lifecycle, naming

logger = logging.getLogger(__name__)

Key = tuple[str, str]
Object = dict[str, Any]


class Sweeper:
    """Expiry decisions over the SnowplowMinis the operator watches; thread-safe."""

    def __init__(self, client: kube.Kube, policy: lifecycle.Policy) -> None:
        self.kube = client
        self.policy = policy
        self._bodies: dict[Key, Object] = {}
        self._warned: set[tuple[str, datetime.datetime]] = set()
        self._expired: set[tuple[str, datetime.datetime]] = set()
        self._lock = threading.Lock()

    def saw(self, body: Object) -> None:
        meta = body["metadata"]
        with self._lock:
            self._bodies[(meta["namespace"], meta["name"])] = body

    def forget(self, key: Key) -> None:
        with self._lock:
            self._bodies.pop(key, None)

    def sweep(self, now: datetime.datetime) -> list[Key]:
        """Warn, delete or suspend what is due at ``now``; the minis to reconcile (suspended).

        Blocking (API calls); a failed call is logged and tried again at the next sweep.
        """
        with self._lock:
            bodies = list(self._bodies.items())
        to_reconcile = []
        for key, body in bodies:
            expiry = lifecycle.expires_at(body, self.policy)
            due = lifecycle.due(expiry, now, warning_seconds=self.policy.warning_seconds)
            if expiry is None or due is lifecycle.Due.NOTHING:
                continue
            try:
                if due is lifecycle.Due.WARN:
                    self._warn(body, expiry, now)
                elif self._expire(key, body, expiry):
                    to_reconcile.append(key)
            except kube.KubeError as exc:
                logger.warning("Expiring %s/%s failed: %s; trying again.", *key, exc)
        return to_reconcile

    def _warn(self, body: Object, expiry: datetime.datetime, now: datetime.datetime) -> None:
        mark = (body["metadata"]["uid"], expiry)
        if mark in self._warned:
            return
        seconds = max(0, round((expiry - now).total_seconds()))
        then = "deleted" if self.policy.action is lifecycle.ExpiryAction.DELETE else "suspended"
        self.kube.post_event(
            body,
            type_="Warning",
            reason="ExpiringSoon",
            message=(
                f"the sandbox expires at {lifecycle.format_time(expiry)} (in {seconds} s) and "
                f"will then be {then}; extend spec.lifecycle.ttl or expiresAt to keep it"
            ),
        )
        self._warned.add(mark)

    def _expire(self, key: Key, body: Object, expiry: datetime.datetime) -> bool:
        """Delete or suspend; True when a reconcile must apply the suspension."""
        mark = (body["metadata"]["uid"], expiry)
        if mark in self._expired:
            return False
        at = lifecycle.format_time(expiry)
        if self.policy.action is lifecycle.ExpiryAction.SUSPEND:
            message = f"the sandbox expired at {at}; scaling it to zero, its data is kept"
            self.kube.post_event(body, type_="Warning", reason="Expired", message=message)
            logger.info("SnowplowMini %s/%s expired at %s; suspending it.", *key, at)
            self._expired.add(mark)
            return True
        message = f"the sandbox expired at {at}; deleting it"
        self.kube.post_event(body, type_="Warning", reason="Expired", message=message)
        logger.info("SnowplowMini %s/%s expired at %s; deleting it.", *key, at)
        self.kube.delete(naming.API_VERSION, naming.KIND, *key, uid=body["metadata"]["uid"])
        self._expired.add(mark)
        self.forget(key)
        return False
