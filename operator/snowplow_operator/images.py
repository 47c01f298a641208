"""The one place for default container images (``Defaults``), which the operator's settings
may override.

The pipeline image (collector, enrich and both sinks) follows the operator's own version, so an
operator upgrade moves every SnowplowMini that does not pin ``spec.<component>.image`` to the
matching pipeline; the third-party images are pinned here and bumped deliberately.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata

PIPELINE_REPOSITORY = "ghcr.io/snowplow-mini-k8s/snowplow-mini-pipeline"
NSQ = "nsqio/nsq:v1.3.0"
ELASTICSEARCH = "docker.elastic.co/elasticsearch/elasticsearch:8.19.21"
KIBANA = "docker.elastic.co/kibana/kibana:8.19.21"


def operator_version() -> str:
    """The installed version of this distribution, or ``0.0.0`` when run from a bare tree."""
    try:
        return importlib.metadata.version("snowplow-mini-k8s")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def pipeline() -> str:
    return f"{PIPELINE_REPOSITORY}:{operator_version()}"


@dataclasses.dataclass(frozen=True)
class Defaults:
    """The images a SnowplowMini gets where its spec pins none; the operator's settings (and
    so the Helm chart's values) may replace each one."""

    pipeline: str = dataclasses.field(default_factory=pipeline)
    nsq: str = NSQ
    elasticsearch: str = ELASTICSEARCH
    kibana: str = KIBANA
