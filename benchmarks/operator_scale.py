"""Benchmark the operator on the real control plane with kwok nodes.

Measures, against the provisioned kube-apiserver, controller-manager, scheduler and kwok (see
tests/components; run ``make provision`` first):

1. apply → Ready of one SnowplowMini on an idle cluster (several rounds; the "Ready" test is the
   ``kubectl wait --for=condition=Ready`` rule: Ready=True for the current generation);
2. the operator process's CPU time and resident memory while idle with no SnowplowMini (the
   baseline), while N SnowplowMinis are created at once until all are Ready, and while it then
   manages them at rest.

The operator runs as ``snowplow-mini operator`` in a subprocess, as in production. Its CPU and
memory are read from /proc. Extra kwok nodes are registered so every pod fits (110 per node).

    .venv/bin/python benchmarks/operator_scale.py --minis 100 --output result.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any

import kubernetes

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.components import kube_cluster, layout
from tests.components.processes import ManagedProcess, free_port
from tests.operator import cluster

PODS_PER_MINI = 8
PODS_PER_NODE = 110
CLOCK_TICKS = 100  # USER_HZ on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minis", type=int, default=100, help="SnowplowMinis created at once")
    parser.add_argument("--single-rounds", type=int, default=5, help="rounds of one mini")
    parser.add_argument("--rest-seconds", type=float, default=60.0, help="idle measurement")
    parser.add_argument("--workers", type=int, default=4, help="operator reconcile workers")
    parser.add_argument("--output", type=pathlib.Path, help="write the results as JSON here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="operator-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        running = kube_cluster.start_cluster(workdir / "cluster", layout.current())
        try:
            results = run(running, workdir, args)
        finally:
            running.stop()
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


def run(kc: kube_cluster.KubeCluster, workdir: pathlib.Path, args: argparse.Namespace) -> dict:
    api = kc.api_client()
    cluster.install_crd(api)
    add_nodes(api, pods=args.minis * PODS_PER_MINI)
    namespace = cluster.new_namespace(api, "bench")
    minis = cluster.Minis(api, namespace)
    metrics_port = free_port()
    operator = start(kc, namespace, workdir, metrics_port, args.workers)
    try:
        cluster.poll(lambda: scrape(metrics_port) is not None, timeout_seconds=30, what="metrics")
        results: dict[str, Any] = {"kubernetes": kc.version, "workers": args.workers}
        results["baseline_idle"] = sample(operator, args.rest_seconds / 2)
        results["single"] = single_rounds(minis, args.single_rounds)
        results["many"] = many(minis, operator, args.minis)
        results["many_at_rest"] = sample(operator, args.rest_seconds)
        results["operator_metrics"] = scrape(metrics_port)
        return results
    finally:
        operator.stop()


def start(
    kc: kube_cluster.KubeCluster, namespace: str, workdir: pathlib.Path, port: int, workers: int
) -> ManagedProcess:
    return cluster.start_operator(
        kc.kubeconfig,
        namespace,
        workdir / "operator.log",
        "--metrics-port",
        str(port),
        "--workers",
        str(workers),
        "--resync-seconds",
        "300",
    )


def add_nodes(api: kubernetes.client.ApiClient, *, pods: int) -> None:
    """Register enough extra kwok nodes for ``pods`` pods (kwok makes them Ready)."""
    core = kubernetes.client.CoreV1Api(api)
    needed = -(-pods // PODS_PER_NODE) + 1 - len(kube_cluster.NODE_NAMES)
    for index in range(max(needed, 0)):
        name = f"kwok-bench-{index}"
        manifest = kube_cluster._node_manifest(name)  # the fixture's own fake node shape
        manifest["metadata"]["labels"]["kubernetes.io/hostname"] = name
        core.create_node(manifest)


def single_rounds(minis: cluster.Minis, rounds: int) -> dict[str, Any]:
    seconds = []
    for index in range(rounds):
        name = f"single-{index}"
        started = time.monotonic()
        minis.create(name)
        minis.wait_for_ready(name, timeout_seconds=120)
        seconds.append(time.monotonic() - started)
        minis.delete(name)
    return {
        "apply_to_ready_seconds": [round(s, 2) for s in seconds],
        "median_seconds": round(statistics.median(seconds), 2),
    }


def many(minis: cluster.Minis, operator: ManagedProcess, count: int) -> dict[str, Any]:
    names = [f"mini-{index:03d}" for index in range(count)]
    before = usage(operator)
    started = time.monotonic()
    for name in names:
        minis.create(name, {"owner": "bench"})
    created = time.monotonic() - started
    peak_rss = before["rss_mib"]
    ready_at: dict[str, float] = {}
    deadline = started + 900
    while len(ready_at) < count and time.monotonic() < deadline:
        listing = minis.custom.list_namespaced_custom_object(*minis._args())
        for mini in listing["items"]:
            name = mini["metadata"]["name"]
            if name not in ready_at and cluster.is_condition_met(mini, "Ready"):
                ready_at[name] = time.monotonic() - started
        peak_rss = max(peak_rss, usage(operator)["rss_mib"])
        time.sleep(0.5)
    after = usage(operator)
    elapsed = time.monotonic() - started
    times = sorted(ready_at.values())
    return {
        "minis": count,
        "ready": len(times),
        "create_calls_seconds": round(created, 2),
        "all_ready_seconds": round(times[-1], 1) if times else None,
        "median_ready_seconds": round(statistics.median(times), 1) if times else None,
        "operator_cpu_seconds": round(after["cpu_seconds"] - before["cpu_seconds"], 2),
        "operator_cpu_percent": round(
            100 * (after["cpu_seconds"] - before["cpu_seconds"]) / elapsed, 1
        ),
        "operator_peak_rss_mib": round(peak_rss, 1),
    }


def sample(operator: ManagedProcess, seconds: float) -> dict[str, Any]:
    """Average CPU and resident memory of the operator over ``seconds``."""
    before = usage(operator)
    time.sleep(seconds)
    after = usage(operator)
    return {
        "seconds": seconds,
        "operator_cpu_percent": round(
            100 * (after["cpu_seconds"] - before["cpu_seconds"]) / seconds, 2
        ),
        "operator_rss_mib": round(after["rss_mib"], 1),
    }


def usage(operator: ManagedProcess) -> dict[str, float]:
    """CPU seconds (user + system) and resident MiB of the operator process, from /proc."""
    proc = pathlib.Path(f"/proc/{operator.pid}")
    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss_kib = next(
        int(line.split()[1])
        for line in (proc / "status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return {"cpu_seconds": cpu, "rss_mib": rss_kib / 1024}


def scrape(port: int) -> dict[str, float] | None:
    """The operator's own metrics of interest, or None until it serves them."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    wanted = (
        "snowplowmini_reconcile_total",
        "snowplowmini_reconcile_duration_seconds_sum",
        "snowplowmini_reconcile_duration_seconds_count",
        "snowplowmini_time_to_ready_seconds_sum",
        "snowplowmini_time_to_ready_seconds_count",
    )
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


if __name__ == "__main__":
    raise SystemExit(main())
