"""One reconcile of one SnowplowMini: read it, render its children, apply them, write status.

The reconcile is level-based and idempotent: it never asks what changed, it renders the whole
desired state and server-side applies every child, so a child deleted or edited by hand comes
back, and a child that is already right is left untouched (an identical apply is a no-op, which
is why an operator restart causes no rollout). To spare the API server, a child that the
``children`` index proves unchanged since our last apply of the same manifest is not sent.
It runs on any trigger (the SnowplowMini's own changes, a child's event, the periodic resync)
and blocks, so it runs in a worker thread.

Nothing here is a finalizer: deleting a SnowplowMini is left to the garbage collector, through
the owner reference on every child, and works with the operator down.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import logging
import time
from typing import Any

from snowplow_operator import (
    children,
    conditions,
    images,
    kube,
    lifecycle,
    metrics,
    naming,
    readiness,
    rendering,
    specs,
    statuses,
)

logger = logging.getLogger(__name__)

NOT_READY_RECHECK_SECONDS = 30.0
MISSING_REFERENCE_RECHECK_SECONDS = 15.0
WARNING_REASONS = ("InvalidSpec", "ReferenceNotFound", "ReconcileError")
Object = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the queue should do next with this SnowplowMini (``None``: wait for an event)."""

    requeue_after_seconds: float | None = None


class Reconciler:
    def __init__(
        self,
        client: kube.Kube,
        index: children.ChildIndex | None = None,
        policy: lifecycle.Policy | None = None,
        default_images: images.Defaults | None = None,
    ) -> None:
        self.kube = client
        self.index = index
        self.policy = policy or lifecycle.Policy()
        self.default_images = default_images or images.Defaults()

    def reconcile(self, namespace: str, name: str) -> Outcome:
        """Bring one SnowplowMini's children and status in line with its spec.

        Raises ``kube.KubeError`` when the API server fails; the caller retries with backoff.
        """
        started = time.monotonic()
        try:
            outcome = self._reconcile(namespace, name)
        except Exception:
            metrics.RECONCILES.labels(result="error").inc()
            raise
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        metrics.RECONCILES.labels(result="success").inc()
        return outcome

    def _reconcile(self, namespace: str, name: str) -> Outcome:
        body = self.kube.find(naming.API_VERSION, naming.KIND, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return Outcome()

        # Problems the user must fix are reported in status; nothing is applied meanwhile.
        try:
            spec = specs.parse(body.get("spec"))
        except specs.InvalidSpecError as exc:
            self._block(body, reason="InvalidSpec", problems=exc.problems)
            return Outcome()
        api_keys, missing = self._read_api_keys(namespace, spec)
        if missing:
            self._block(body, reason="ReferenceNotFound", problems=missing)
            return Outcome(MISSING_REFERENCE_RECHECK_SECONDS)

        mini = rendering.Mini(
            name=name,
            namespace=namespace,
            uid=body["metadata"]["uid"],
            spec=spec,
            images=self.default_images,
        )
        # A suspended or expired-and-suspended mini keeps every child but runs no pod.
        expiry = lifecycle.expires_at(body, self.policy)
        suspended = lifecycle.suspension(
            suspend=spec.suspend,
            expiry=expiry,
            now=datetime.datetime.now(datetime.UTC),
            policy=self.policy,
        )
        manifests = rendering.render(mini, api_keys=api_keys)
        if suspended is not None:
            manifests = lifecycle.scaled_to_zero(manifests)
        try:
            applied = self._apply_all(manifests)
            self._prune(mini)
        except kube.KubeError as exc:
            self._block(body, reason="ReconcileError", problems=[str(exc)])
            raise

        states = self._states(mini, applied)
        status = statuses.build(
            generation=body["metadata"]["generation"],
            states=states,
            endpoints=rendering.endpoints(mini),
            previous=body.get("status"),
            at=conditions.now(),
            operator_version=images.operator_version(),
            suspended=suspended,
        )
        status.pop("expiresAt", None)
        if expiry is not None:
            status["expiresAt"] = lifecycle.format_time(expiry)
        self._write_status(body, status)
        ready = all(state.ready for state in states)
        return Outcome(None if ready else NOT_READY_RECHECK_SECONDS)

    def _read_api_keys(
        self, namespace: str, spec: specs.MiniSpec
    ) -> tuple[dict[str, str], list[str]]:
        """API keys by registry name, and a problem per missing Secret or key."""
        keys: dict[str, str] = {}
        missing: list[str] = []
        for index, registry in enumerate(spec.iglu.registries):
            ref = registry.api_key_secret_ref
            if ref is None:
                continue
            where = f"spec.iglu.registries[{index}].apiKeySecretRef"
            secret = self.kube.find("v1", "Secret", namespace, ref.name)
            encoded = (secret or {}).get("data", {}).get(ref.key)
            if secret is None:
                missing.append(
                    f'{where}.name: Secret "{ref.name}" not found in namespace "{namespace}"'
                )
            elif encoded is None:
                missing.append(f'{where}.key: Secret "{ref.name}" has no key "{ref.key}"')
            else:
                try:
                    keys[registry.name] = base64.b64decode(encoded).decode()
                except (binascii.Error, UnicodeDecodeError):
                    missing.append(f'{where}.key: the value of "{ref.key}" is not UTF-8 text')
        return keys, missing

    def _apply_all(self, manifests: list[Object]) -> dict[tuple[str, str], Object]:
        """Apply each child unless the index proves it is as we left it; the current objects."""
        current: dict[tuple[str, str], Object] = {}
        for manifest in manifests:
            key = (manifest["kind"], manifest["metadata"]["name"])
            unchanged = self.index.unchanged(manifest) if self.index else None
            if unchanged is not None:
                current[key] = unchanged
                continue
            current[key] = self._apply(manifest)
            if self.index:
                self.index.applied(manifest, current[key])
        return current

    def _apply(self, manifest: Object) -> Object:
        try:
            return self.kube.apply(manifest)
        except kube.InvalidError:
            if manifest["kind"] != "Job":
                raise
        # A Job's pod template is immutable: replace the Job when its rendering changed.
        meta = manifest["metadata"]
        logger.info("Replacing Job %s/%s, whose template changed.", meta["namespace"], meta["name"])
        self.kube.delete("batch/v1", "Job", meta["namespace"], meta["name"])
        return self.kube.apply(manifest)

    def _prune(self, mini: rendering.Mini) -> None:
        """Delete the Kibana children when Kibana is disabled (the PVC is never pruned)."""
        if mini.spec.kibana.enabled:
            return
        for api_version, kind, suffix in (
            ("batch/v1", "Job", rendering.DATA_VIEWS_SUFFIX),
            ("v1", "Service", naming.KIBANA),
            ("apps/v1", "Deployment", naming.KIBANA),
        ):
            self.kube.delete(
                api_version, kind, mini.namespace, naming.child_name(mini.name, suffix)
            )

    def _states(
        self, mini: rendering.Mini, applied: dict[tuple[str, str], Object]
    ) -> list[readiness.ComponentState]:
        workloads = rendering.workload_names(mini)
        states = []
        for component in naming.COMPONENTS:
            workload = naming.child_name(mini.name, component)
            if component not in workloads:
                states.append(readiness.disabled(component, workload))
                continue
            state = readiness.of_deployment(
                component, workload, applied.get(("Deployment", workload))
            )
            if component == naming.KIBANA:
                job = naming.child_name(mini.name, rendering.DATA_VIEWS_SUFFIX)
                state = readiness.with_job(state, applied.get(("Job", job)), job_name=job)
            states.append(state)
        return states

    def _block(self, body: Object, *, reason: str, problems: list[str]) -> None:
        status = statuses.blocked(
            generation=body["metadata"]["generation"],
            reason=reason,
            problems=problems,
            previous=body.get("status"),
            at=conditions.now(),
            operator_version=images.operator_version(),
        )
        self._write_status(body, status)

    def _write_status(self, body: Object, status: Object) -> None:
        """Write ``status`` unless it is what is stored; post an Event per transition."""
        previous = body.get("status") or {}
        if status == previous:
            return
        meta = body["metadata"]
        self.kube.patch_status(
            meta["namespace"], meta["name"], statuses.merge_patch(previous, status)
        )
        self._post_transitions(body, previous, status)

    def _post_transitions(self, body: Object, previous: Object, status: Object) -> None:
        """One Event per flip of Ready or Degraded; a first Degraded=False is not news."""
        for before, after in conditions.transitions(
            previous.get("conditions"), status["conditions"]
        ):
            if after["type"] == conditions.READY and after["status"] == "True":
                self._observe_time_to_ready(body, previous)
            if after["type"] not in (conditions.READY, conditions.DEGRADED):
                continue
            is_degraded = after["type"] == conditions.DEGRADED and after["status"] == "True"
            if before is None and after["type"] == conditions.DEGRADED and not is_degraded:
                continue
            is_warning = is_degraded or after["reason"] in WARNING_REASONS
            self.kube.post_event(
                body,
                type_="Warning" if is_warning else "Normal",
                reason=after["reason"],
                message=after["message"] or f"{after['type']} is {after['status']}",
            )

    def _observe_time_to_ready(self, body: Object, previous: Object) -> None:
        """Time from creation to the first Ready, not to Ready after a later change."""
        progressing = conditions.find(previous.get("conditions"), conditions.PROGRESSING)
        created = body["metadata"].get("creationTimestamp")
        if created and (progressing is None or progressing.get("reason") == "Creating"):
            metrics.observe_time_to_ready(created)
