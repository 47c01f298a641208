"""A real single-node Elasticsearch on loopback, restartable on the same port and data.

The distribution is Elastic's integ-test-zip from Maven: the server with only the transport and
x-pack core/security modules, no bundled JDK (the pinned Temurin runs it). Elasticsearch
refuses to run as root, and the cache lives in root's home, which other users cannot enter;
so when the tests run as root each instance gets a folder under the system temp directory
that holds a hard-linked view of the distribution and its own config, data and logs, owned
by the unprivileged user that ``provision.py`` created. Heap is fixed at 512 MB, security is
off and the disk watermarks are disabled, so a nearly full disk does not block writes.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import pwd
import shutil
import tempfile
import urllib.request

from tests.components import layout
from tests.components.processes import (
    ComponentError,
    ManagedProcess,
    free_port,
    require_file,
    wait_until,
)

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 180.0
HEAP = "512m"


class ElasticsearchServer:
    """One Elasticsearch node; ``url`` is its HTTP endpoint (no authentication)."""

    def __init__(self, lay: layout.Layout) -> None:
        v = lay.versions
        require_file(
            lay.elasticsearch_home / "lib" / f"elasticsearch-{v.elasticsearch}.jar",
            f"Elasticsearch {v.elasticsearch}",
        )
        require_file(v.java_home / "bin" / "java", "the JDK for Elasticsearch")
        self.version = v.elasticsearch
        self.host = "127.0.0.1"
        self.port = free_port()
        self.transport_port = free_port()
        self._owner = _run_as(v.elasticsearch_user)
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="snowplow-mini-es-"))
        self.data_dir = self.workdir / "data"
        self._home = self.workdir / "home"
        self._prepare(lay)
        self._process = ManagedProcess(
            "elasticsearch",
            self._command(),
            log_path=self.workdir / "elasticsearch.out",
            env=self._environment(v.java_home),
            cwd=self.workdir,
            user=self._owner.pw_uid if self._owner else None,
            group=self._owner.pw_gid if self._owner else None,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> pathlib.Path:
        return self._process.log_path

    def is_running(self) -> bool:
        return self._process.is_running()

    def start(self) -> None:
        """Start the node and wait until the cluster health is at least yellow."""
        self._process.start()
        wait_until(
            self._is_healthy,
            timeout_seconds=START_TIMEOUT_SECONDS,
            what=f"Elasticsearch {self.url}/_cluster/health",
            interval_seconds=0.5,
            process=self._process,
        )

    def stop(self) -> None:
        self._process.stop(timeout_seconds=60)

    def kill(self) -> None:
        """Kill the node at once, as a crash would."""
        self._process.kill()

    def restart(self) -> None:
        """Stop (if running) and start again on the same port and data folder."""
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop the node and delete its folder (data included)."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _is_healthy(self) -> bool:
        url = f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())["status"] in ("yellow", "green")

    def _prepare(self, lay: layout.Layout) -> None:
        """Lay out home (linked), config (copied, tuned), data, logs and tmp for this node."""
        source = lay.elasticsearch_home
        _link_tree(source, self._home, skip=("config", "logs"))
        config = self.workdir / "config"
        shutil.copytree(source / "config", config)
        (config / "jvm.options.d" / "test.options").write_text(
            f"-Xms{HEAP}\n-Xmx{HEAP}\n-XX:HeapDumpPath={self.workdir / 'logs'}\n"
        )
        for name in ("data", "logs", "tmp"):
            (self.workdir / name).mkdir()
        if self._owner is not None:
            _chown_tree(self.workdir, self._owner, skip=self._home)

    def _command(self) -> list[str]:
        settings = {
            "cluster.name": "snowplow-mini-test",
            "node.name": "node-0",
            "discovery.type": "single-node",
            "network.host": self.host,
            "http.port": str(self.port),
            "transport.port": str(self.transport_port),
            "path.data": str(self.data_dir),
            "path.logs": str(self.workdir / "logs"),
            "xpack.security.enabled": "false",
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.destructive_requires_name": "false",
        }
        return [str(self._home / "bin" / "elasticsearch")] + [
            f"-E{key}={value}" for key, value in settings.items()
        ]

    def _environment(self, java_home: pathlib.Path) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.workdir),
            "ES_JAVA_HOME": str(java_home),
            "ES_PATH_CONF": str(self.workdir / "config"),
            "ES_TMPDIR": str(self.workdir / "tmp"),
        }


def _run_as(user: str) -> pwd.struct_passwd | None:
    """The account to run as: ``user`` when we are root, else ourselves (``None``)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(user)
    except KeyError:
        raise ComponentError(
            f"user {user!r} for Elasticsearch does not exist; run `make provision` first"
        ) from None


def _link_tree(source: pathlib.Path, target: pathlib.Path, *, skip: tuple[str, ...]) -> None:
    """Hard-link the distribution (fast, no space); copy when across file systems."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(
        source,
        target,
        copy_function=link_or_copy,
        ignore=lambda folder, names: [n for n in names if folder == str(source) and n in skip],
    )


def _chown_tree(root: pathlib.Path, owner: pwd.struct_passwd, *, skip: pathlib.Path) -> None:
    """Give the node's writable folders to its user; the linked home stays root's, read-only."""
    os.chown(root, owner.pw_uid, owner.pw_gid)
    for folder, dirs, files in os.walk(root):
        if pathlib.Path(folder) == skip:
            dirs.clear()
            continue
        for name in dirs + files:
            path = pathlib.Path(folder) / name
            if path != skip:
                os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
