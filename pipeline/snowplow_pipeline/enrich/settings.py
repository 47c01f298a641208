"""Enrich settings: one pydantic settings object, read from ``SNOWPLOW_ENRICH_*``.

The NSQ group uses the same names as the sinks' (``SNOWPLOW_ENRICH_NSQ__NSQD_TCP_ADDRESSES``,
``SNOWPLOW_ENRICH_NSQ__NSQD_HTTP_ADDRESS``, ...), so the operator wires every consumer the same
way. Nested fields are set with a double underscore; lists are given as JSON
(``SNOWPLOW_ENRICH_NSQ__NSQD_TCP_ADDRESSES='["nsqd:4150"]'``).

``load`` is the only place that reads the environment; it lists every problem at once, each
with the environment variable that sets it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pydantic_settings
from pydantic import Field

from snowplow_pipeline import configuring, nsq, topics

ENV_PREFIX = "SNOWPLOW_ENRICH_"
ENV_NESTED_DELIMITER = "__"
NAME_PATTERN = r"^[.a-zA-Z0-9_-]{1,64}(#ephemeral)?$"  # nsqd's rule for topics and channels


InvalidSettingsError = configuring.InvalidSettingsError


class NsqSettings(nsq.ConsumerSources, nsq.PublisherSettings):
    """Where enrich reads collector payloads and where it writes its outputs."""

    input_topic: str = Field(
        default=topics.RAW_EVENTS, pattern=NAME_PATTERN, description="Topic of collector payloads."
    )
    channel: str = Field(
        default="enrich", pattern=NAME_PATTERN, description="Channel on input_topic."
    )
    enriched_topic: str = Field(
        default=topics.ENRICHED_EVENTS,
        pattern=NAME_PATTERN,
        description="Topic of enriched TSV lines.",
    )
    bad_topic: str = Field(
        default=topics.BAD_ENRICHED_EVENTS, pattern=NAME_PATTERN, description="Topic of bad rows."
    )
    max_in_flight: int = Field(
        default=100, ge=1, description="Collector payloads enriched at once."
    )
    msg_timeout_seconds: float | None = Field(
        # Short, so that a crashed enrich's payloads come back within seconds (nsqd's own
        # default is a minute); a long handler keeps its message by TOUCHing it.
        default=10.0,
        ge=1,
        description="How long nsqd waits before redelivering a payload; nsqd's own when unset.",
    )


class EnrichSettings(pydantic_settings.BaseSettings):
    """Everything the enrich process needs; see the module docstring for the variables."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="forbid"
    )

    host: str = Field(default="127.0.0.1", description="Address of /health and /metrics.")
    port: int = Field(default=8081, ge=0, le=65535, description="Port of /health and /metrics.")
    nsq: NsqSettings = Field(default_factory=NsqSettings, description="Topics and addresses.")
    iglu_resolver: Path | None = Field(
        default=None, description="A Snowplow resolver config (JSON); Iglu Central when not given."
    )
    enrichments: Path | None = Field(
        default=None,
        description="A folder of upstream enrichment configs (JSON); none when not given.",
    )
    max_attempts_on_error: int = Field(
        default=5,
        ge=1,
        description="Tries of a payload whose processing fails unexpectedly before it becomes "
        "a generic_error bad row.",
    )
    shutdown_timeout_seconds: float = Field(
        default=30.0, ge=0, description="How long shutdown waits for payloads in flight."
    )

    @pydantic.field_validator("enrichments")
    @classmethod
    def _is_a_folder(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_dir():
            raise ValueError("expected an existing folder")
        return path


def load(**overrides: Any) -> EnrichSettings:
    """Read the settings from the process environment; ``overrides`` win over it.

    Raises ``InvalidSettingsError`` listing every problem with its environment variable.
    """
    return configuring.load(EnrichSettings, component="enrich", **overrides)
