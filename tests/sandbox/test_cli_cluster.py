"""``snowplow-mini sandbox`` end to end, as a CI job runs it: a subprocess with KUBECONFIG set,
against the real control plane and the operator; events from a real Elasticsearch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from snowplow_operator import naming, slugs
from tests.components.kube_cluster import KubeCluster
from tests.operator import cluster
from tests.sandbox import elasticsearch_data

pytestmark = [pytest.mark.kubernetes, pytest.mark.elasticsearch]

BRANCH = "Feature/CLI_Test-ünï"


@pytest.fixture
def sandbox(kube_cluster: KubeCluster, namespace: str):
    """Run ``snowplow-mini sandbox <args>`` in the test's namespace: (exit code, out, err)."""
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    env.pop("SNOWPLOW_SANDBOX_ELASTICSEARCH_URL", None)

    def run(*args: str, namespaced: bool = True) -> tuple[int, str, str]:
        command = [
            sys.executable,
            "-c",
            "from snowplow_pipeline.cli import main; raise SystemExit(main())",
            "sandbox",
            *args,
            *(("--namespace", namespace) if namespaced else ()),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        return done.returncode, done.stdout, done.stderr

    return run


def test_create_wait_url_events_list_delete_with_their_exit_codes(
    sandbox, namespace: str, minis: cluster.Minis, operator, elasticsearch
) -> None:
    name = slugs.sandbox_name(BRANCH)
    suffix = uuid.uuid4().hex[:8]
    good_index, bad_index = f"good-{suffix}", f"bad-{suffix}"
    elasticsearch_data.fill(elasticsearch.url, good_index=good_index, bad_index=bad_index)
    events_flags = ("--elasticsearch-url", elasticsearch.url, "--good-index", good_index)
    events_flags += ("--bad-index", bad_index)

    created = sandbox("create", BRANCH, "--owner", "alice", "--pull-request", "7", "--ttl", "2h")
    again = sandbox("create", BRANCH, "--owner", "alice", "--pull-request", "7", "--ttl", "2h")
    waited = sandbox("wait", "--branch", BRANCH, "--timeout", "90")
    url = sandbox("url", name)
    counts = sandbox("events", name, *events_flags)
    page_views = sandbox("events", name, "--good", "--event-type", "page_view", *events_flags)
    strict = sandbox("events", name, "--fail-on-bad", *events_flags)
    listed = sandbox("list", "-o", "json", "-l", f"{naming.LABEL_PULL_REQUEST}=7")
    table = sandbox("list")
    deleted = sandbox("delete", "--branch", BRANCH, "--wait")

    assert (created[0], created[1]) == (0, name + "\n"), created
    assert (again[0], again[1]) == (0, name + "\n"), again
    assert waited[0] == 0, waited
    assert waited[2].splitlines()[-1] == f"{name}: Ready"
    assert url == (0, f"http://{name}-collector.{namespace}.svc:8080\n", "")
    assert (counts[0], json.loads(counts[1])) == (0, {"total": 5, "good": 3, "bad": 2})
    assert [item["eventType"] for item in json.loads(page_views[1])] == ["page_view", "page_view"]
    assert strict[0] == 1 and strict[2].strip() == f"{name}: 2 bad rows (--fail-on-bad)"
    rows = json.loads(listed[1])
    assert [(r["name"], r["branch"], r["pullRequest"], r["ready"]) for r in rows] == [
        (name, BRANCH, 7, "True")
    ]
    assert rows[0]["expiresAt"]
    assert table[1].splitlines()[0].split() == [
        "NAMESPACE",
        "NAME",
        "READY",
        "REASON",
        "BRANCH",
        "PULLREQUEST",
        "EXPIRESAT",
    ]
    assert name in table[1].splitlines()[1]
    assert deleted == (0, "", f"{name}: deleted\n")
    assert minis.exists(name) is False


def test_missing_sandbox_exits_3_and_usage_errors_exit_2(sandbox, kube_cluster) -> None:
    missing_url = sandbox("url", "nope")
    missing_delete = sandbox("delete", "nope")
    ignored = sandbox("delete", "nope", "--ignore-not-found")
    missing_events = sandbox("events", "nope")
    no_name = sandbox("url")
    bad_kubeconfig = sandbox("list", "--kubeconfig", "/nonexistent/kubeconfig")
    bad_flag = sandbox("wait", "x", "--timeout", "soon")

    assert missing_url[0] == 3 and "not found" in missing_url[2]
    assert missing_delete[0] == 3
    assert ignored[0] == 0
    assert missing_events[0] == 3
    assert no_name == (2, "", "sandbox url: give the sandbox name or --branch\n")
    assert bad_kubeconfig[0] == 2 and "invalid kubeconfig" in bad_kubeconfig[2]
    assert bad_flag[0] == 2


def test_wait_without_an_operator_times_out_with_exit_1(sandbox, minis: cluster.Minis) -> None:
    sandbox("create", "feature/no-operator")

    code, _, err = sandbox("wait", "--branch", "feature/no-operator", "--timeout", "2")

    assert code == 1
    name = slugs.sandbox_name("feature/no-operator")
    assert err.splitlines()[0] == (
        f"{name}: waiting for the operator to report on the current spec"
    )
    assert err.splitlines()[-1].startswith(f"sandbox wait: sandbox {name} was not Ready after 2 s")


def test_an_invalid_spec_is_a_usage_error(sandbox) -> None:
    code, _, err = sandbox("create", "feature/x", "--commit", "not-hex")

    assert code == 2
    assert "spec.source.commit" in err
