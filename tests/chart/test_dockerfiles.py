"""The two Dockerfiles, checked without a container engine: multi-stage on a slim base, a
numeric non-root user, commands that are real commands of our CLI (run here with --help), and
a build that installs the very distribution the tests import, from the context .dockerignore
leaves."""

from __future__ import annotations

import importlib.metadata
import pathlib
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from snowplow_operator import images, podspecs, rendering, specs
from tests.chart import charting, dockerfiles

OPERATOR = charting.ROOT / "operator" / "Dockerfile"
PIPELINE = charting.ROOT / "pipeline" / "Dockerfile"
CLI = pathlib.Path(sys.executable).parent / "snowplow-mini"


def run_help(argv: list[str]) -> str:
    """Run ``argv`` (an image's command) from this venv with --help; its help text."""
    assert argv[0] == "snowplow-mini", f"the command is {argv[0]!r}, not our CLI"
    result = subprocess.run(
        [str(CLI), *argv[1:], "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{argv}: {result.stderr}"
    return result.stdout


def rendered_pipeline_args() -> dict[str, list[str]]:
    """The container args of the operator's pipeline Deployments for a default SnowplowMini."""
    mini = rendering.Mini("demo", "dev", "uid-1", specs.parse({}))
    return {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]["containers"][0]["args"]
        for m in rendering.render(mini, api_keys={})
        if m["kind"] == "Deployment"
        and m["spec"]["template"]["spec"]["containers"][0]["image"] == images.pipeline()
    }


@pytest.mark.parametrize("dockerfile", [OPERATOR, PIPELINE], ids=["operator", "pipeline"])
def test_image_is_multi_stage_on_slim_python_and_runs_as_numeric_non_root_user(
    dockerfile: pathlib.Path,
) -> None:
    stages = dockerfiles.parse(dockerfile)

    final = stages[-1]
    assert len(stages) == 2
    assert stages[0].name == "build"
    assert final.base == stages[0].base == "python:3.11-slim-bookworm"
    assert final.all("COPY") == ["--from=build /opt/snowplow-mini /opt/snowplow-mini"]
    assert final.all("RUN") == []
    assert final.all("USER") == [f"{podspecs.PIPELINE_UID}:{podspecs.PIPELINE_UID}"]


@pytest.mark.helm
def test_operator_image_runs_the_chart_args_as_a_real_operator_command(
    helm: pathlib.Path,
) -> None:
    final = dockerfiles.parse(OPERATOR)[-1]
    manifests = charting.template(helm, {"metrics.enabled": "true", "watchNamespaces": "{dev}"})
    deployment = charting.only(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]

    entrypoint = final.exec_form("ENTRYPOINT")
    assert entrypoint == ["snowplow-mini"]
    chart_command = entrypoint + pod["containers"][0]["args"]
    default_command = entrypoint + (final.exec_form("CMD") or [])

    assert "snowplow-mini operator" in run_help(chart_command)
    assert "snowplow-mini operator" in run_help(default_command)
    assert pod["securityContext"]["runAsUser"] == int(final.all("USER")[0].split(":")[0])


def test_pipeline_image_runs_the_commands_the_operator_renders() -> None:
    final = dockerfiles.parse(PIPELINE)[-1]
    commands = rendered_pipeline_args()

    assert final.exec_form("ENTRYPOINT") is None
    assert sorted(commands) == ["demo-collector", "demo-enrich", "demo-sink-bad", "demo-sink-good"]
    assert commands["demo-sink-good"] == ["snowplow-mini", "--log-format", "json", "sink", "good"]
    for argv in commands.values():
        run_help(argv)
    assert "snowplow-mini collector" in run_help(final.exec_form("CMD") or [])


@pytest.mark.parametrize("dockerfile", [OPERATOR, PIPELINE], ids=["operator", "pipeline"])
def test_build_installs_the_distribution_the_tests_use(
    dockerfile: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    build = dockerfiles.parse(dockerfile)[0]
    context = dockerfiles.context_files(charting.ROOT)
    source = tmp_path / "src"

    # Do the build stage's COPY steps from what the context really holds.
    assert build.all("WORKDIR") == ["/src"]
    for copy in build.all("COPY"):
        *sources, destination = copy.split()
        for item in sources:
            matched = [f for f in context if f == item or f.startswith(f"{item}/")]
            assert matched, f"{dockerfile.name}: COPY {item} finds nothing in the build context"
            for file in matched:
                relative = pathlib.Path(file).name if file == item else file[len(item) + 1 :]
                target = source / destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(charting.ROOT / file, target)
    assert "/opt/snowplow-mini/bin/pip install ." in build.all("RUN")[0]

    # Build as the image does (pip with build isolation, setuptools from the package index).
    wheel_dir = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "-w", str(wheel_dir), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip

    (wheel,) = wheel_dir.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    installed = importlib.metadata.distribution("snowplow-mini-k8s")
    project = tomllib.loads((charting.ROOT / "pyproject.toml").read_text())["project"]
    assert wheel.name.startswith(f"snowplow_mini_k8s-{project['version']}-")
    for package, folder in (
        ("snowplow_pipeline", charting.ROOT / "pipeline" / "snowplow_pipeline"),
        ("snowplow_operator", charting.ROOT / "operator" / "snowplow_operator"),
    ):
        modules = {f"{package}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*.py")}
        assert modules <= set(names), f"missing from the image: {sorted(modules - set(names))}"
    assert "snowplow_pipeline/collector_payload.thrift" in names
    assert any(n.startswith("snowplow_pipeline/iglu/embedded/schemas/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "snowplow-mini = snowplow_pipeline.cli:main" in scripts
    assert [ep.value for ep in installed.entry_points if ep.name == "snowplow-mini"] == [
        "snowplow_pipeline.cli:main"
    ]
