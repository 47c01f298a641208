"""Just enough of a Dockerfile and .dockerignore reader to check our two images without a
container engine: stages, instructions, the exec-form ENTRYPOINT/CMD and the build context."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re


@dataclasses.dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [value for key, value in self.instructions if key == keyword]

    def exec_form(self, keyword: str) -> list[str] | None:
        """The last ENTRYPOINT or CMD of the stage as a list; ``None`` when it has none."""
        values = self.all(keyword)
        if not values:
            return None
        parsed = json.loads(values[-1])
        assert isinstance(parsed, list), f"{keyword} must use the exec (JSON) form"
        return parsed


def parse(path: pathlib.Path) -> list[Stage]:
    """Stages in order; continuation lines are joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), " ".join(value.split())
        if keyword == "FROM":
            parts = value.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        else:
            assert stages, f"{path}: {keyword} before FROM"
            stages[-1].instructions.append((keyword, value))
    return stages


def _pattern(glob: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out + "(?:/.*)?")


def context_files(root: pathlib.Path) -> list[str]:
    """Files of the build context at ``root`` after .dockerignore (last matching rule wins)."""
    rules = []
    for raw in (root / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((_pattern(line.lstrip("!").strip("/")), not negated))
    kept = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in {".git", ".venv"}]
        for file in files:
            relative = (pathlib.Path(folder) / file).relative_to(root).as_posix()
            excluded = False
            for pattern, excludes in rules:
                if pattern.fullmatch(relative):
                    excluded = excludes
            if not excluded:
                kept.append(relative)
    return sorted(kept)
