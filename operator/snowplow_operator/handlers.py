"""kopf wiring: watch SnowplowMinis and their children, and feed a work queue of reconciles.

Only raw event handlers (``@kopf.on.event``) are registered, never change handlers, timers or
daemons. That choice keeps kopf from putting a finalizer or its bookkeeping annotations on a
SnowplowMini, so deleting one (or its namespace) never waits for the operator, and it makes
reconciliation level-based: every trigger (a SnowplowMini listed at start-up or changed, a
child changed or deleted, the periodic resync) enqueues the same full reconcile.

Expiry has no per-object timer either: one sweeper task (``sweeping``) is fed the latest body
of every SnowplowMini by the watch handler.

A SnowplowMini's own status writes come back as watch events; those are skipped when
``status.observedGeneration`` already equals ``metadata.generation``, so status does not loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import dataclasses
import datetime
import logging
import typing
from collections.abc import Hashable
from typing import Any

import kopf

from snowplow_operator import (
    children,
    images,
    kube,
    lifecycle,
    metrics,
    naming,
    queueing,
    reconciling,
    sweeping,
)

logger = logging.getLogger(__name__)

registry = kopf.OperatorRegistry()

# kopf resource selectors, as positional arguments: (group, version, plural) or (v1, plural).
CHILD_RESOURCES: tuple[tuple[str, ...], ...] = (
    ("apps", "v1", "deployments"),
    ("batch", "v1", "jobs"),
    ("v1", "services"),
    ("v1", "configmaps"),
    ("v1", "secrets"),
)
# A burst of child events (one rollout) collapses into one reconcile after this delay.
CHILD_EVENT_DELAY_SECONDS = 0.5
Key = tuple[str, str]


@dataclasses.dataclass
class OperatorOptions:
    """What the entry point decides; handed to the handlers through kopf's memo."""

    kubeconfig: str | None = None
    workers: int = 4
    resync_seconds: float = 300.0
    namespaced: bool = True
    policy: lifecycle.Policy = dataclasses.field(default_factory=lifecycle.Policy)
    sweep_interval_seconds: float = 30.0
    default_images: images.Defaults = dataclasses.field(default_factory=images.Defaults)


@dataclasses.dataclass
class Runtime:
    reconciler: reconciling.Reconciler
    queue: queueing.WorkQueue
    index: children.ChildIndex
    sweeper: sweeping.Sweeper
    known: set[Key] = dataclasses.field(default_factory=set)
    resync: asyncio.Task[None] | None = None
    sweep: asyncio.Task[None] | None = None


@kopf.on.login(registry=registry)
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Log kopf in with the same credentials as the reconciler's client."""
    options: OperatorOptions = memo.options
    configuration = kube.load_configuration(options.kubeconfig)
    token = configuration.api_key.get("BearerToken") or configuration.api_key.get(
        "authorization", ""
    )
    token = token.removeprefix("Bearer ").strip()
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        scheme="Bearer" if token else None,
        token=token or None,
    )


# A failed start stops the operator at once instead of idling until kopf's retry.
@kopf.on.startup(registry=registry, errors=kopf.ErrorsMode.PERMANENT)
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    options: OperatorOptions = memo.options
    configure(settings, namespaced=options.namespaced)

    # Reconciles block on the official client; give them their own threads.
    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(options.workers + 2))
    index = children.ChildIndex(max_age_seconds=options.resync_seconds)
    client = kube.Kube(kube.load_client(options.kubeconfig))
    reconciler = reconciling.Reconciler(
        client, index, options.policy, default_images=options.default_images
    )

    async def work(key: Hashable) -> float | None:
        namespace, name = typing.cast(tuple[str, str], key)
        outcome = await asyncio.to_thread(reconciler.reconcile, namespace, name)
        metrics.QUEUE_DEPTH.set(runtime.queue.depth())
        return outcome.requeue_after_seconds

    queue = queueing.WorkQueue(work, workers=options.workers)
    sweeper = sweeping.Sweeper(client, options.policy)
    runtime = Runtime(reconciler=reconciler, queue=queue, index=index, sweeper=sweeper)
    runtime.queue.start()
    runtime.resync = asyncio.create_task(_resync(runtime, options.resync_seconds))
    runtime.sweep = asyncio.create_task(_sweep(runtime, options.sweep_interval_seconds))
    memo.runtime = runtime


def configure(settings: kopf.OperatorSettings, *, namespaced: bool) -> None:
    """kopf settings: no kopf Events (ours are explicit), no finalizer, narrow watches."""
    settings.posting.enabled = False
    # kopf logs every raw event handler call at INFO; with a dozen children per mini that
    # drowns the operator's own lines.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    settings.persistence.finalizer = f"{naming.GROUP}/finalizer"
    settings.networking.request_timeout = 60.0
    # Namespaced mode needs no cluster-wide list permissions for discovery.
    settings.scanning.disabled = namespaced
    # Children are filtered by the API server, so unrelated Secrets never reach the operator.
    selector = f"{naming.LABEL_MANAGED_BY}={naming.MANAGER}"
    for resource in CHILD_RESOURCES:
        settings.watching.label_selectors[resource] = selector  # type: ignore[index]


@kopf.on.cleanup(registry=registry)
async def stop(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is None:
        return
    for task in (runtime.resync, runtime.sweep):
        if task is None:
            continue
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await runtime.queue.stop()


@kopf.on.event(naming.GROUP, naming.VERSION, naming.PLURAL, registry=registry)
async def mini_changed(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    # Minis are namespaced, so the namespace is always there.
    key = (str(body.metadata.namespace), str(body.metadata.name))
    if event["type"] == "DELETED":
        runtime.known.discard(key)
        runtime.sweeper.forget(key)
        runtime.queue.forget(key)
        runtime.index.forget(key[0], f"{key[1]}-")
        metrics.MINIS.set(len(runtime.known))
        return
    first_sight = key not in runtime.known
    runtime.known.add(key)
    runtime.sweeper.saw(copy.deepcopy(dict(body)))
    metrics.MINIS.set(len(runtime.known))
    if first_sight or body.status.get("observedGeneration") != body.metadata.get("generation"):
        runtime.queue.add(key)


def _child_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo) -> None:
    owner = parent_of(body)
    if owner is None:
        return
    runtime: Runtime = memo.runtime
    if event["type"] == "DELETED":
        runtime.index.gone(dict(body))
        runtime.queue.add(owner)
    else:
        runtime.index.saw(dict(body))
        runtime.queue.add(owner, CHILD_EVENT_DELAY_SECONDS)


def parent_of(body: kopf.Body | dict[str, Any]) -> Key | None:
    """The SnowplowMini that controls a child, from its owner reference."""
    metadata = body.get("metadata", {})
    for ref in metadata.get("ownerReferences", []):
        if ref.get("kind") == naming.KIND and ref.get("apiVersion", "").startswith(naming.GROUP):
            return (metadata.get("namespace"), ref.get("name"))
    return None


def _register_child_handlers() -> None:
    for resource in CHILD_RESOURCES:

        async def child_changed(
            event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any
        ) -> None:
            _child_event(event, body, memo)

        kopf.on.event(
            *resource,
            id=f"child-{resource[-1]}",
            labels={naming.LABEL_MANAGED_BY: naming.MANAGER},
            registry=registry,
        )(child_changed)


_register_child_handlers()


async def _resync(runtime: Runtime, interval_seconds: float) -> None:
    """Reconcile every known SnowplowMini periodically: the safety net for missed events."""
    while True:
        await asyncio.sleep(interval_seconds)
        for key in sorted(runtime.known):
            runtime.queue.add(key)


async def _sweep(runtime: Runtime, interval_seconds: float) -> None:
    """Act on expiry every ``interval_seconds``: the one sweeper task of the operator."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            now = datetime.datetime.now(datetime.UTC)
            due = await asyncio.to_thread(runtime.sweeper.sweep, now)
        except Exception:
            logger.exception("The expiry sweep failed; trying again in %.0f s.", interval_seconds)
            continue
        for key in due:
            runtime.queue.add(key)
