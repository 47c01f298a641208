"""Build or fetch the real components the test suite runs, at the versions pinned in
``versions.toml``, into a cache outside the checkout.

Run as ``.venv/bin/python tests/components/provision.py`` (``make provision``; ``make test``
runs it first). Every step first checks whether its versioned output is already in the cache
and answers the right version; only then does it skip. A warm run therefore only executes a
handful of ``--version`` calls. A cold run builds the Kubernetes control plane from the Go
modules of the release, which takes most of the time on a small machine.

Outputs appear atomically: each is built under a temporary name and renamed into place, so an
interrupted run leaves nothing that a later run could mistake for a finished build. Any failure
stops the run with a non-zero exit and the reason; nothing is skipped silently.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from typing import IO

# The script is run by path, so make the repository importable for the shared layout module.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.components import layout
from tests.trackers import layout as tracker_layout

HEARTBEAT_SECONDS = 60.0
K8S_BUILD_TAGS = "selinux,notest,grpcnotrace"
K8S_VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")


class ProvisionError(Exception):
    """A step could not produce its output; the message says which and why."""


def say(message: str) -> None:
    print(f"provision: {message}", flush=True)


# --- running commands -------------------------------------------------------------------------


def run(
    args: Sequence[str],
    *,
    cwd: pathlib.Path | None = None,
    env: dict[str, str] | None = None,
    log: pathlib.Path | None = None,
) -> str:
    """Run a command to completion and return its stdout.

    With ``log`` the output goes to that file and a line is printed every minute while the
    command runs (long compiles would otherwise look hung). On a non-zero exit the last lines
    of the output are part of the raised error.
    """
    say(f"  $ {' '.join(args)}")
    if log is None:
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ProvisionError(_failure(args, done.returncode, done.stdout + done.stderr))
        return done.stdout
    return _run_logged(args, cwd=cwd, env=env, log=log)


def _run_logged(
    args: Sequence[str],
    *,
    cwd: pathlib.Path | None,
    env: dict[str, str] | None,
    log: pathlib.Path,
) -> str:
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                say(f"    ... still running, {time.monotonic() - started:.0f} s (log: {log})")
    output = log.read_text()
    if proc.returncode != 0:
        raise ProvisionError(_failure(args, proc.returncode, output))
    return output


def _failure(args: Sequence[str], returncode: int, output: str) -> str:
    tail = "\n".join(output.strip().splitlines()[-30:])
    return f"command failed with exit code {returncode}: {' '.join(args)}\n{tail}"


def go_env() -> dict[str, str]:
    """The environment for the go command: the caller's (GOPROXY, GOFLAGS, caches kept)."""
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    return env


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ProvisionError(f"`{name}` is not on PATH; it is needed to build the components")
    return path


# --- checking what is already there ------------------------------------------------------------


def answers_version(args: Sequence[str], expected: str) -> bool:
    """Whether a binary exists, runs, and prints ``expected`` in its version output."""
    if not pathlib.Path(args[0]).is_file():
        return False
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and expected in done.stdout + done.stderr


def version_checks(lay: layout.Layout) -> dict[str, tuple[list[str], str]]:
    """For each binary: the command that prints its version and the text it must contain."""
    v = lay.versions
    kube = f"Kubernetes {v.kubernetes}"
    b = lay.binary
    return {
        "kube-apiserver": ([str(b("kube-apiserver")), "--version"], kube),
        "kube-controller-manager": ([str(b("kube-controller-manager")), "--version"], kube),
        "kube-scheduler": ([str(b("kube-scheduler")), "--version"], kube),
        "kubectl": ([str(b("kubectl")), "version", "--client"], f"Client Version: {v.kubernetes}"),
        "etcd": ([str(b("etcd")), "--version"], f"etcd Version: {v.etcd.lstrip('v')}"),
        "kwok": ([str(b("kwok")), "--version"], v.kwok),
        "nsqd": ([str(b("nsqd")), "--version"], f"nsqd {v.nsq}"),
        "nsqlookupd": ([str(b("nsqlookupd")), "--version"], f"nsqlookupd {v.nsq}"),
        "helm": ([str(b("helm")), "version", "--template={{.Version}}"], v.helm),
    }


def missing_binaries(lay: layout.Layout, names: Sequence[str]) -> list[str]:
    checks = version_checks(lay)
    return [name for name in names if not answers_version(*checks[name])]


def install_binaries(lay: layout.Layout, built: dict[str, pathlib.Path]) -> None:
    """Move freshly built binaries to their versioned names and check each answers its version."""
    bin_dir = lay.root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, source in built.items():
        target = lay.binary(name)
        partial = target.with_name(target.name + ".partial")
        shutil.copy2(source, partial)
        partial.chmod(0o755)
        partial.replace(target)
    still_missing = missing_binaries(lay, list(built))
    if still_missing:
        checks = version_checks(lay)
        details = "; ".join(
            f"{' '.join(checks[n][0])} should print {checks[n][1]!r}" for n in still_missing
        )
        raise ProvisionError(f"built binaries do not answer the pinned version: {details}")


# --- Go wrapper modules ---------------------------------------------------------------------------


def go_download(module: str) -> dict[str, str]:
    """``go mod download -json`` of one module version; returns its JSON description."""
    info: dict[str, str] = json.loads(run(["go", "mod", "download", "-json", module], env=go_env()))
    if info.get("Error"):
        raise ProvisionError(f"the Go module proxy did not serve {module}: {info['Error']}")
    return info


def init_wrapper_module(
    directory: pathlib.Path,
    *,
    module: str,
    requires: Sequence[str],
    replaces: Sequence[tuple[str, str]],
    tool_packages: Sequence[str],
) -> None:
    """Create a throw-away module that depends on the given modules and imports the commands.

    A ``main`` package of a dependency module can be built with ``go build``; the wrapper is
    where replace directives that the upstream go.mod keeps to itself are restated.
    """
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    env = go_env()
    run(["go", "mod", "init", module], cwd=directory, env=env)
    edits = [f"-replace={old}={new}" for old, new in replaces]
    edits += [f"-require={req}" for req in requires]
    run(["go", "mod", "edit", *edits], cwd=directory, env=env)
    imports = "\n".join(f'\t_ "{pkg}"' for pkg in tool_packages)
    (directory / "tools.go").write_text(
        f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"
    )
    run(["go", "mod", "tidy"], cwd=directory, env=env, log=directory / "tidy.log")


def module_version(directory: pathlib.Path, module: str) -> str:
    return run(["go", "list", "-m", "-f", "{{.Version}}", module], cwd=directory, env=go_env())


def go_build(
    directory: pathlib.Path,
    packages: Sequence[str],
    *,
    ldflags: str,
    tags: str = "",
) -> pathlib.Path:
    """Build static binaries of ``packages`` into ``directory/bin`` and return that folder."""
    out = directory / "bin"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    args = ["go", "build", "-trimpath", f"-ldflags={ldflags}", "-o", f"{out}/"]
    if tags:
        args.insert(3, f"-tags={tags}")
    run([*args, *packages], cwd=directory, env=go_env(), log=directory / "build.log")
    return out


# --- the steps ----------------------------------------------------------------------------------

KUBE_BINARIES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "etcd",
    "kwok",
)


def provision_kubernetes(lay: layout.Layout) -> str:
    """The control plane, kubectl, etcd and kwok, built in one wrapper module.

    ``go install k8s.io/kubernetes/cmd/...@v1.x`` is refused because the release's go.mod maps
    its staging modules with local replaces (golang/go#44840); as the Kubernetes maintainers
    advise (kubernetes/kubernetes#79384) the wrapper pins each staging module to its v0.x tag.
    etcd and kwok live in the same graph, so their k8s.io libraries are compiled only once.
    """
    missing = missing_binaries(lay, KUBE_BINARIES)
    if not missing:
        return "already built: " + ", ".join(KUBE_BINARIES)
    say(f"  to build: {', '.join(missing)}")
    require_tool("go")
    v = lay.versions
    release = go_download(f"k8s.io/kubernetes@{v.kubernetes}")
    staging = staging_modules(pathlib.Path(release["GoMod"]))
    say(f"  {len(staging)} staging modules pinned to {v.kubernetes_staging}")

    # Wrapper module: pinned staging modules plus the commands as imports.
    directory = lay.build_dir(f"k8s-{v.kubernetes}")
    init_wrapper_module(
        directory,
        module="local.invalid/k8sbins",
        requires=[
            f"k8s.io/kubernetes@{v.kubernetes}",
            f"go.etcd.io/etcd/server/v3@{v.etcd}",
            f"sigs.k8s.io/kwok@{v.kwok}",
        ],
        replaces=[(m, f"{m}@{v.kubernetes_staging}") for m in staging],
        tool_packages=[
            "go.etcd.io/etcd/server/v3",
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
            "k8s.io/kubernetes/cmd/kubectl",
            "sigs.k8s.io/kwok/cmd/kwok",
        ],
    )
    check_resolved(directory, {"go.etcd.io/etcd/server/v3": v.etcd, "sigs.k8s.io/kwok": v.kwok})

    # One build for all five: the shared libraries are compiled once.
    out = go_build(
        directory,
        [
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "k8s.io/kubernetes/cmd/kube-scheduler",
            "k8s.io/kubernetes/cmd/kubectl",
            "go.etcd.io/etcd/server/v3",
            "sigs.k8s.io/kwok/cmd/kwok",
        ],
        ldflags=kubernetes_ldflags(v.kubernetes, build_date=release_time(release)),
        tags=K8S_BUILD_TAGS,
    )
    # `go build -o dir/` names the binary of a .../server/v3 package "server".
    built = {name: out / name for name in KUBE_BINARIES if name != "etcd"}
    built["etcd"] = out / "server"
    install_binaries(lay, built)
    return "built: " + ", ".join(KUBE_BINARIES)


def staging_modules(release_go_mod: pathlib.Path) -> list[str]:
    """The staging modules: those the release's go.mod maps to ``./staging/src/...``."""
    pattern = re.compile(r"^\s*(k8s\.io/\S+)\s+=>\s+\./staging/src/", re.MULTILINE)
    modules = pattern.findall(release_go_mod.read_text())
    if not modules:
        raise ProvisionError(f"no staging replace directives found in {release_go_mod}")
    return sorted(set(modules))


def check_resolved(directory: pathlib.Path, expected: dict[str, str]) -> None:
    """Fail if ``go mod tidy`` settled on another version of a pinned module than asked for."""
    for module, version in expected.items():
        got = module_version(directory, module).strip()
        if got != version:
            raise ProvisionError(
                f"{module}: the wrapper module resolved {got}, versions.toml pins {version}; "
                "another module of the graph requires a newer one, so pin that one instead"
            )


def release_time(download: dict[str, str]) -> str:
    """The release's commit time from the module's .info file: a reproducible build date."""
    info = json.loads(pathlib.Path(download["Info"]).read_text())
    return str(info["Time"])


def kubernetes_ldflags(version: str, *, build_date: str) -> str:
    """Version stamps as ``hack/lib/version.sh`` sets them, so /version reports the release."""
    major, minor = version.removeprefix("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in K8S_VERSION_PACKAGES:
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={build_date}",
        ]
    return " ".join(flags)


def provision_kwok_stages(lay: layout.Layout) -> str:
    """Copy kwok's "fast" node and pod stages out of the module; kwok v0.8 needs them given."""
    if all(path.is_file() for path in lay.kwok_stage_files):
        return f"already present in {lay.kwok_stages_dir}"
    require_tool("go")
    module_dir = pathlib.Path(go_download(f"sigs.k8s.io/kwok@{lay.versions.kwok}")["Dir"])
    partial = lay.kwok_stages_dir.with_name(lay.kwok_stages_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for relative in layout.KWOK_STAGE_FILES:
        source = module_dir / relative
        if not source.is_file():
            raise ProvisionError(f"kwok {lay.versions.kwok} has no stage file {relative}")
        shutil.copyfile(source, partial / source.name)
    shutil.rmtree(lay.kwok_stages_dir, ignore_errors=True)
    partial.rename(lay.kwok_stages_dir)
    return f"copied {len(layout.KWOK_STAGE_FILES)} stage files to {lay.kwok_stages_dir}"


def provision_nsq(lay: layout.Layout) -> str:
    """nsqd and nsqlookupd; the wrapper restates nsq's go-svc replace (``go install`` fails)."""
    names = ("nsqd", "nsqlookupd")
    if not missing_binaries(lay, names):
        return "already built: nsqd, nsqlookupd"
    require_tool("go")
    v = lay.versions
    directory = lay.build_dir(f"nsq-{v.nsq}")
    init_wrapper_module(
        directory,
        module="local.invalid/nsqbins",
        requires=[f"github.com/nsqio/nsq@{v.nsq}"],
        replaces=[("github.com/judwhite/go-svc", v.nsq_go_svc_fork)],
        tool_packages=["github.com/nsqio/nsq/apps/nsqd", "github.com/nsqio/nsq/apps/nsqlookupd"],
    )
    check_resolved(directory, {"github.com/nsqio/nsq": v.nsq})
    out = go_build(
        directory,
        ["github.com/nsqio/nsq/apps/nsqd", "github.com/nsqio/nsq/apps/nsqlookupd"],
        ldflags="-s -w",
    )
    install_binaries(lay, {name: out / name for name in names})
    return "built: nsqd, nsqlookupd"


def provision_helm(lay: layout.Layout) -> str:
    """Helm from its module with ``go install`` (its go.mod has no replaces), version-stamped."""
    if not missing_binaries(lay, ["helm"]):
        return "already built: helm"
    require_tool("go")
    v = lay.versions
    directory = lay.build_dir(f"helm-{v.helm}")
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "bin").mkdir(parents=True)
    pkg = "helm.sh/helm/v4/internal/version"
    ldflags = f"-s -w -X {pkg}.version={v.helm} -X {pkg}.metadata= -X {pkg}.gitTreeState=clean"
    env = go_env() | {"GOBIN": str(directory / "bin")}
    run(
        ["go", "install", "-trimpath", f"-ldflags={ldflags}", f"helm.sh/helm/v4/cmd/helm@{v.helm}"],
        env=env,
        log=directory / "build.log",
    )
    install_binaries(lay, {"helm": directory / "bin" / "helm"})
    return "built: helm"


def provision_elasticsearch(lay: layout.Layout) -> str:
    """The integ-test-zip distribution from Maven, unpacked; run later with the pinned JDK."""
    v = lay.versions
    java = v.java_home / "bin" / "java"
    if not java.is_file():
        raise ProvisionError(f"Elasticsearch needs the JDK at {v.java_home}; {java} is missing")
    jar = lay.elasticsearch_home / "lib" / f"elasticsearch-{v.elasticsearch}.jar"
    if jar.is_file():
        return f"already unpacked: {lay.elasticsearch_home}"

    # Fetch the zip with Maven's own client (its local repository caches it as well).
    zip_path = lay.downloads_dir / f"elasticsearch-{v.elasticsearch}.zip"
    if not zip_path.is_file():
        require_tool("mvn")
        lay.downloads_dir.mkdir(parents=True, exist_ok=True)
        run(
            [
                "mvn",
                "-B",
                "-q",
                f"org.apache.maven.plugins:maven-dependency-plugin:{v.maven_dependency_plugin}:copy",
                "-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:"
                f"{v.elasticsearch}:zip",
                f"-DoutputDirectory={lay.downloads_dir}",
            ]
        )

    # Unpack beside the final name, then rename it into place.
    partial = lay.root / f"elasticsearch-{v.elasticsearch}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    top = unzip_with_modes(zip_path, partial)
    if not (top / "lib" / jar.name).is_file():
        raise ProvisionError(f"{zip_path} does not contain lib/{jar.name}")
    top.rename(lay.elasticsearch_home)
    shutil.rmtree(partial)
    return f"unpacked to {lay.elasticsearch_home}"


def unzip_with_modes(zip_path: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    """Extract a zip keeping file modes (``zipfile`` drops them); return its single top folder.

    Everything is made readable by all: the Elasticsearch user reads it through links.
    """
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            path = pathlib.Path(archive.extract(member, target))
            mode = (member.external_attr >> 16) & 0o777
            if not path.is_symlink():
                path.chmod((mode or 0o644) | (0o755 if path.is_dir() else 0o444))
    tops = list(target.iterdir())
    if len(tops) != 1 or not tops[0].is_dir():
        raise ProvisionError(f"{zip_path} does not hold exactly one top-level folder")
    return tops[0]


def ensure_elasticsearch_user(lay: layout.Layout) -> str:
    """Elasticsearch refuses to run as root; when we are root, it runs as a system user."""
    name = lay.versions.elasticsearch_user
    if os.geteuid() != 0:
        user = pwd.getpwuid(os.geteuid()).pw_name
        return f"not root: Elasticsearch will run as the current user ({user})"
    try:
        pwd.getpwnam(name)
    except KeyError:
        pass
    else:
        return f"system user {name} exists"
    require_tool("useradd")
    run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ]
    )
    return f"created system user {name}"


def provision_debian_packages(lay: layout.Layout) -> str:
    """chromium (for the browser tracker) and wrk (for the benchmarks), from Debian's archive.

    A warm run only checks that their programs exist. When one is missing, the package lists
    are updated once and the missing packages installed; that needs root, as apt-get does.
    """
    binaries = tracker_layout.current().debian_binaries
    missing = [name for name, program in binaries.items() if not program.is_file()]
    if not missing:
        return "already installed: " + ", ".join(binaries)
    if os.geteuid() != 0:
        raise ProvisionError(
            f"{', '.join(missing)} missing and not root: run "
            f"`apt-get update && apt-get install -y {' '.join(missing)}` as root"
        )
    require_tool("apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    logs = lay.build_dir("apt")
    logs.mkdir(parents=True, exist_ok=True)
    run(["apt-get", "update"], env=env, log=logs / "update.log")
    run(["apt-get", "install", "-y", *missing], env=env, log=logs / "install.log")
    still_missing = [name for name in missing if not binaries[name].is_file()]
    if still_missing:
        raise ProvisionError(f"apt-get installed {', '.join(still_missing)} without its program")
    return "installed: " + ", ".join(missing)


def provision_npm_packages(lay: layout.Layout) -> str:
    """The JavaScript trackers and playwright-core, each into ``<cache>/npm/<name>-<version>``.

    Installed with ``--ignore-scripts``: none of them needs an install script, and it keeps any
    package from fetching a browser or binary of its own.
    """
    packages = tracker_layout.current().all
    missing = [package for package in packages if not package.is_installed()]
    if not missing:
        return "already installed: " + ", ".join(f"{p.name}@{p.version}" for p in packages)
    require_tool("node")
    npm = require_tool("npm")
    logs = lay.build_dir("npm")
    logs.mkdir(parents=True, exist_ok=True)
    for package in missing:
        partial = package.folder.with_name(package.folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        run(
            [
                npm,
                "install",
                "--prefix",
                str(partial),
                "--ignore-scripts",
                "--no-save",
                "--no-audit",
                "--no-fund",
                f"{package.name}@{package.version}",
            ],
            env=dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"),
            log=logs / f"{package.folder.name}.log",
        )
        shutil.rmtree(package.folder, ignore_errors=True)
        partial.rename(package.folder)
        if not package.is_installed():
            raise ProvisionError(f"npm did not install {package.name}@{package.version}")
    return "installed: " + ", ".join(f"{p.name}@{p.version}" for p in missing)


STEPS: tuple[tuple[str, Callable[[layout.Layout], str]], ...] = (
    ("Kubernetes control plane, etcd and kwok", provision_kubernetes),
    ("kwok stages", provision_kwok_stages),
    ("nsqd and nsqlookupd", provision_nsq),
    ("Helm", provision_helm),
    ("Elasticsearch", provision_elasticsearch),
    ("Elasticsearch user", ensure_elasticsearch_user),
    ("chromium and wrk (Debian)", provision_debian_packages),
    ("JavaScript trackers and playwright-core (npm)", provision_npm_packages),
)


@contextlib.contextmanager
def locked(root: pathlib.Path) -> Iterator[None]:
    """One provisioning run at a time per cache (two clones may share it)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".provision.lock").open("w") as lock:
        if not _try_lock(lock):
            say(f"waiting for another provisioning run holding {lock.name}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _try_lock(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    lay = layout.current()
    say(f"cache: {lay.root} (set ${layout.CACHE_ENV} to move it)")
    started = time.monotonic()
    timings: list[tuple[str, float]] = []
    with locked(lay.root):
        for title, step in STEPS:
            say(f"{title} ...")
            step_started = time.monotonic()
            try:
                result = step(lay)
            except (ProvisionError, OSError, subprocess.SubprocessError) as exc:
                say(f"FAILED: {title}: {exc}")
                return 1
            elapsed = time.monotonic() - step_started
            timings.append((title, elapsed))
            say(f"{title}: {result} ({elapsed:.1f} s)")
    summary = ", ".join(f"{title} {seconds:.1f} s" for title, seconds in timings)
    say(f"all components ready in {time.monotonic() - started:.1f} s ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
