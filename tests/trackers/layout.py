"""Where the JavaScript trackers and the browser of the tracker tests live.

The npm packages are pinned in ``tests/components/versions.toml`` (section ``[npm]``) and
installed by ``tests/components/provision.py`` into ``<cache>/npm/<name>-<version>``, one folder
per package, under the same cache root as the other components. The tests take every path
from here, so provisioning and tests cannot disagree.

The browser tracker ships a self-contained UMD build (``dist/index.umd.js``, global
``snowplowBrowserTracking``), so the test page loads it as it is and no bundler is needed.
Chromium is Debian's package; its version is what Debian ships (security updates replace
older builds in the archive), so it is checked, not pinned.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import tomllib

from tests.components import layout

CHROMIUM = pathlib.Path("/usr/bin/chromium")


@dataclasses.dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package and the folder it is installed into."""

    name: str
    version: str
    root: pathlib.Path

    @property
    def folder(self) -> pathlib.Path:
        """``<cache>/npm/<name>-<version>``, the scope's ``@`` and ``/`` flattened."""
        flat = self.name.removeprefix("@").replace("/", "-")
        return self.root / "npm" / f"{flat}-{self.version}"

    @property
    def node_modules(self) -> pathlib.Path:
        return self.folder / "node_modules"

    @property
    def package_dir(self) -> pathlib.Path:
        return self.node_modules / self.name

    def is_installed(self) -> bool:
        """Whether the folder holds this package at the pinned version (a file check only)."""
        manifest = self.package_dir / "package.json"
        if not manifest.is_file():
            return False
        return bool(json.loads(manifest.read_text()).get("version") == self.version)


@dataclasses.dataclass(frozen=True)
class TrackerPackages:
    """The pinned npm packages of the tracker tests."""

    node_tracker: NpmPackage
    browser_tracker: NpmPackage
    playwright_core: NpmPackage
    debian_packages: tuple[str, ...]

    @property
    def all(self) -> tuple[NpmPackage, ...]:
        return (self.node_tracker, self.browser_tracker, self.playwright_core)

    @property
    def browser_tracker_script(self) -> pathlib.Path:
        """The self-contained UMD build the test page loads."""
        return self.browser_tracker.package_dir / "dist" / "index.umd.js"

    @property
    def debian_binaries(self) -> dict[str, pathlib.Path]:
        """Each Debian package and the program that shows it is installed (same name)."""
        return {name: pathlib.Path("/usr/bin") / name for name in self.debian_packages}


def current(versions_file: pathlib.Path = layout.VERSIONS_FILE) -> TrackerPackages:
    """The packages pinned in ``versions.toml`` under the configured cache root."""
    data = tomllib.loads(versions_file.read_text())
    pinned = data["npm"]
    root = layout.cache_dir()
    return TrackerPackages(
        node_tracker=NpmPackage("@snowplow/node-tracker", pinned["node_tracker"], root),
        browser_tracker=NpmPackage("@snowplow/browser-tracker", pinned["browser_tracker"], root),
        playwright_core=NpmPackage("playwright-core", pinned["playwright_core"], root),
        debian_packages=tuple(data["debian"]["packages"]),
    )
