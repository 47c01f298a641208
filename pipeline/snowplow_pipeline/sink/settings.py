"""Sink settings: one pydantic settings object, read from ``SNOWPLOW_SINK_*``.

One process runs one kind of sink, ``good`` (enriched events into the ``good`` index) or
``bad`` (bad rows into the ``bad`` index); the kind picks the topics and the defaults of the
index and channel names, which follow upstream Mini's wiring (``ESLoaderChannelGood``,
``ESLoaderChannelBad``). Nested fields are set with a double underscore, for example
``SNOWPLOW_SINK_BATCH__MAX_DOCUMENTS=1000``; lists are given as JSON
(``SNOWPLOW_SINK_ELASTICSEARCH__URLS='["http://es:9200"]'``).

``load`` is the only place that reads the environment; it lists every problem at once, each
with the environment variable that sets it.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
import pydantic_settings
from pydantic import BaseModel, Field

from snowplow_pipeline import configuring, nsq
from snowplow_pipeline.sink import templates

ENV_PREFIX = "SNOWPLOW_SINK_"
ENV_NESTED_DELIMITER = "__"
DEFAULT_CHANNELS = {"good": "ESLoaderChannelGood", "bad": "ESLoaderChannelBad"}
INDEX_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


InvalidSettingsError = configuring.InvalidSettingsError


class ElasticsearchSettings(BaseModel):
    urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:9200"],
        min_length=1,
        description="Elasticsearch endpoints, with scheme and port.",
    )
    username: str | None = Field(default=None, description="Basic auth user (none: no auth).")
    password: pydantic.SecretStr | None = Field(default=None, description="Basic auth password.")
    request_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long one request may take before it is retried."
    )


class IndexSettings(BaseModel):
    name: str | None = Field(
        default=None,
        pattern=INDEX_NAME_PATTERN,
        description="Index to write to; the kind (good or bad) when not set.",
    )
    shards: int = Field(default=1, ge=1, description="Primary shards of a new index.")
    replicas: int = Field(default=0, ge=0, description="Replicas of a new index (0: one node).")
    total_fields_limit: int = Field(
        default=2000,
        ge=200,
        description="Most fields the mapping may hold; events that would pass it are routed.",
    )
    keyword_max_chars: int = Field(
        default=templates.MAX_KEYWORD_CHARS,
        ge=1,
        le=templates.MAX_KEYWORD_CHARS,
        description="Longer strings are kept in the document but not indexed.",
    )


class BatchSettings(BaseModel):
    max_documents: int = Field(default=500, ge=1, description="Documents per bulk request.")
    max_bytes: int = Field(
        default=5_000_000, ge=1024, description="Bytes of documents per bulk request."
    )
    flush_after_seconds: float = Field(
        default=0.5, gt=0, description="Longest wait of a document for its batch to fill."
    )
    max_concurrent_requests: int = Field(
        default=2, ge=1, description="Bulk requests under way at the same time."
    )


class RetrySettings(BaseModel):
    initial_backoff_seconds: float = Field(
        default=0.5, gt=0, description="Wait before the first retry; doubles each time."
    )
    max_backoff_seconds: float = Field(default=8.0, gt=0, description="Longest wait between tries.")
    give_up_after_seconds: float = Field(
        default=30.0,
        gt=0,
        description="After this, unacknowledged messages go back to NSQ, to come again later.",
    )


class NsqSettings(nsq.ConsumerSources):
    nsqd_http_address: str = Field(
        default="127.0.0.1:4151", description="nsqd HTTP address for publishing failures."
    )
    channel: str | None = Field(
        default=None,
        pattern=r"^[.a-zA-Z0-9_-]{1,64}(#ephemeral)?$",
        description="Channel on each topic; ESLoaderChannelGood/ESLoaderChannelBad when unset.",
    )
    max_in_flight: int = Field(
        default=1000, ge=1, description="Messages handled at once (bounds the open batches)."
    )
    msg_timeout_seconds: float | None = Field(
        # Short, so that a crashed sink's messages come back within seconds (nsqd's own default
        # is a minute); messages waiting for a bulk answer are kept alive by TOUCH.
        default=10.0,
        gt=0,
        description="nsqd's redelivery timeout for this consumer.",
    )
    max_message_bytes: int = Field(
        default=nsq.DEFAULT_MAX_MESSAGE_BYTES,
        gt=1024,
        description="nsqd's --max-msg-size; a larger failure becomes a size_violation.",
    )


class SinkSettings(pydantic_settings.BaseSettings):
    """Everything a sink process needs; see the module docstring for the variables."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="forbid"
    )

    kind: Literal["good", "bad"] = Field(
        description="good: EnrichedEvents into the good index; bad: bad rows into bad."
    )
    host: str = Field(default="127.0.0.1", description="Address of /metrics and /health.")
    port: int = Field(default=8090, ge=0, le=65535, description="Port of /metrics and /health.")
    elasticsearch: ElasticsearchSettings = Field(
        default_factory=ElasticsearchSettings, description="Where to index."
    )
    index: IndexSettings = Field(
        default_factory=IndexSettings, description="The index and its template."
    )
    batch: BatchSettings = Field(default_factory=BatchSettings, description="Bulk batching.")
    retry: RetrySettings = Field(default_factory=RetrySettings, description="Bulk retries.")
    nsq: NsqSettings = Field(
        default_factory=NsqSettings, description="Where to consume from and publish failures to."
    )
    shutdown_timeout_seconds: float = Field(
        default=30.0, ge=0, description="How long shutdown waits for messages in flight."
    )

    @property
    def index_name(self) -> str:
        return self.index.name or self.kind

    @property
    def channel(self) -> str:
        return self.nsq.channel or DEFAULT_CHANNELS[self.kind]


def load(**overrides: Any) -> SinkSettings:
    """Read the settings from the process environment; ``overrides`` win over it.

    Raises ``InvalidSettingsError`` listing every problem with its environment variable.
    """
    return configuring.load(SinkSettings, component="sink", **overrides)
