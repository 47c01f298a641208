"""The README's cluster quick start names what the chart and the example really are."""

from __future__ import annotations

import re

import yaml

from tests.chart import charting


def quick_start() -> str:
    readme = (charting.ROOT / "README.md").read_text()
    return readme.split("\n## On Kubernetes\n", 1)[1].split("\n## ", 1)[0]


def test_quick_start_waits_for_the_example_and_forwards_its_services() -> None:
    example = yaml.safe_load(charting.EXAMPLE_FILE.read_text())
    name = example["metadata"]["name"]

    section = quick_start()

    assert f"kubectl -n dev apply -f {charting.EXAMPLE_FILE.relative_to(charting.ROOT)}" in section
    assert f"wait --for=condition=Ready snowplowmini/{name} " in section
    assert f"port-forward service/{name}-collector 8080:8080" in section
    assert f"port-forward service/{name}-kibana 5601:5601" in section
    assert example["spec"]["collector"]["cookie"]["secure"] is False  # plain http port-forward


def test_quick_start_installs_this_chart_with_its_deployment_name() -> None:
    chart = charting.load_chart_metadata()

    section = quick_start()

    assert f"helm install snowplow-mini charts/{chart['name']} " in section
    assert f"deployment/snowplow-mini-{chart['name']}" in section
    built = re.findall(r"docker build -f (\S+) -t (\S+) \.", section)
    assert [path for path, _ in built] == ["operator/Dockerfile", "pipeline/Dockerfile"]
    assert all(tag.endswith(f":{chart['appVersion']}") for _, tag in built)
