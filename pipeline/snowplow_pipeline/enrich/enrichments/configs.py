"""The parsed form of one enrichment config, handed to an enrichment's ``build`` function.

An ``EnrichmentConfig`` carries what a builder needs (the parameters, already valid against the
config schema, and the folder that relative asset paths start from) and collects the problems
the builder finds beyond the schema: a regex that does not compile, a database file that is
missing. Every problem is recorded with its file and JSON path instead of raised, so that
``load_enrichments`` can report all of them at once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from snowplow_pipeline.enrich import processing


class EnrichmentConfigError(ValueError):
    """The enrichment configs cannot be used; ``problems`` lists each as ``file: path: what``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        listing = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{len(problems)} {noun} in the enrichment configs:\n{listing}")


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """Which configured enrichment is speaking, as enrichment-failure bad rows name it."""

    schema_key: str
    identifier: str

    def failure(self, message: str) -> processing.EnrichmentFailure:
        return processing.EnrichmentFailure(
            schema_key=self.schema_key, identifier=self.identifier, message=message
        )


@dataclasses.dataclass(slots=True)
class EnrichmentConfig:
    """One enabled config: where it came from, its parameters, and the problems found."""

    identity: Identity
    parameters: dict[str, Any]
    data: dict[str, Any]
    folder: Path
    source: str
    location: str
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def version(self) -> str:
        return self.identity.schema_key.rsplit("/", 1)[-1]

    def problem(self, path: str, message: str) -> None:
        """Record a problem at ``path`` (relative to ``data.parameters``; empty for itself)."""
        where = f"{self.location}data.parameters" + (f".{path}" if path else "")
        self.problems.append(f"{self.source}: {where}: {message}")
