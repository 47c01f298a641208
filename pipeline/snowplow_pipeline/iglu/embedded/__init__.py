"""The registry shipped inside the package: schemas the Mini needs to work offline.

It holds the wrappers enrich unpacks (``payload_data``, ``contexts``, ``unstruct_event``), the
bad-row schemas the pipeline writes, and the entities trackers attach by default. The schemas
are our own, written from the Snowplow protocol facts; they follow Iglu layout
(``schemas/<vendor>/<name>/jsonschema/<m-r-a>``, no file extension) so that the same folder
works as an ``embedded`` repository in a standard resolver config.

The resolver always consults this registry first, so pipeline-internal schemas never depend on
the network.
"""

from __future__ import annotations

from pathlib import Path

from snowplow_pipeline.iglu import registries

NAME = "Embedded snowplow-mini"
PATH = Path(__file__).parent


def embedded_registry() -> registries.EmbeddedRegistry:
    """The package's own registry, named as it appears in lookup histories."""
    return registries.EmbeddedRegistry(name=NAME, path=PATH, priority=0)
