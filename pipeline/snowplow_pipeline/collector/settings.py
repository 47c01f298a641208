"""Collector settings: one pydantic settings object, read from ``SNOWPLOW_COLLECTOR_*``.

Groups follow the concerns of upstream's collector configuration (cookie, CORS, do-not-track
cookie, redirects, cross-domain policy, sizes), so a reader who knows upstream's HOCON finds the
same knobs. Nested fields are set with a double underscore, for example
``SNOWPLOW_COLLECTOR_COOKIE__SAME_SITE=Lax``; lists and mappings are given as JSON.

``load`` is the only place that reads the environment. It turns every validation problem into
one line naming the environment variable, so that a bad deployment stops at start-up with the
whole list rather than one problem per restart.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pydantic
import pydantic_settings
from pydantic import BaseModel, Field

from snowplow_pipeline import badrows, configuring
from snowplow_pipeline import nsq as nsq_boundary

ENV_PREFIX = "SNOWPLOW_COLLECTOR_"
ENV_NESTED_DELIMITER = "__"

TP2_PATH = "/com.snowplowanalytics.snowplow/tp2"
REDIRECT_PATH = "/r/tp2"
IGLU_PATH = "/com.snowplowanalytics.iglu/v1"

MappingTarget = Literal[
    "/com.snowplowanalytics.snowplow/tp2", "/r/tp2", "/com.snowplowanalytics.iglu/v1"
]


InvalidSettingsError = configuring.InvalidSettingsError


class CookieSettings(BaseModel):
    enabled: bool = Field(default=True, description="Set the network user id cookie on responses.")
    name: str = Field(default="sp", min_length=1, description="Name of the network user id cookie.")
    expiration_days: int = Field(default=365, gt=0, description="Lifetime of the cookie in days.")
    domains: list[str] = Field(
        default_factory=list,
        description="Cookie domains; the first that matches a host in Origin is used.",
    )
    fallback_domain: str | None = Field(
        default=None, description="Cookie domain when no configured domain matches the Origin."
    )
    secure: bool = Field(
        default=True, description="Mark the cookie Secure (needed for SameSite=None)."
    )
    http_only: bool = Field(
        default=False, description="Mark the cookie HttpOnly (hides it from JS)."
    )
    same_site: Literal["None", "Lax", "Strict"] = Field(
        default="None", description="SameSite attribute of the cookie."
    )


class CorsSettings(BaseModel):
    max_age_seconds: int = Field(
        default=3600, ge=0, description="How long browsers may cache a CORS preflight answer."
    )


class DoNotTrackCookieSettings(BaseModel):
    enabled: bool = Field(default=False, description="Drop requests that carry the opt-out cookie.")
    name: str = Field(default="", description="Name of the opt-out cookie.")
    value: str = Field(
        default="", description="Regular expression the whole cookie value must match."
    )

    @pydantic.field_validator("value")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value

    @pydantic.model_validator(mode="after")
    def _named_when_enabled(self) -> DoNotTrackCookieSettings:
        if self.enabled and not self.name:
            raise ValueError("a cookie name is required when the do-not-track cookie is enabled")
        return self


class RedirectSettings(BaseModel):
    enabled: bool = Field(default=False, description="Answer /r/tp2?u=<url> with a 302 to the url.")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Hosts redirects may go to; empty allows any host."
    )


class CrossDomainSettings(BaseModel):
    enabled: bool = Field(default=False, description="Serve /crossdomain.xml.")
    domains: list[str] = Field(
        default_factory=lambda: ["*"], description="Domains allowed by /crossdomain.xml."
    )
    secure: bool = Field(default=True, description="Require HTTPS in /crossdomain.xml.")


PositiveBytes = Annotated[int, Field(gt=0)]
MappedPath = Annotated[str, pydantic.StringConstraints(pattern=r"^/[^/]+/[^/]+$")]


class CollectorSettings(pydantic_settings.BaseSettings):
    """Everything the collector process needs; see the module docstring for the variables."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="forbid"
    )

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(
        default=8080, ge=0, le=65535, description="TCP port to listen on (0: any free)."
    )
    cookie: CookieSettings = Field(
        default_factory=CookieSettings, description="The network user id cookie."
    )
    cors: CorsSettings = Field(default_factory=CorsSettings, description="CORS preflight.")
    do_not_track_cookie: DoNotTrackCookieSettings = Field(
        default_factory=DoNotTrackCookieSettings, description="The opt-out cookie."
    )
    redirect: RedirectSettings = Field(
        default_factory=RedirectSettings, description="Redirect tracking on /r/tp2."
    )
    path_mappings: dict[MappedPath, MappingTarget] = Field(
        default_factory=dict,
        description='Extra paths served as a standard one, e.g. {"/acme/v1": "/r/tp2"}.',
    )
    crossdomain: CrossDomainSettings = Field(
        default_factory=CrossDomainSettings, description="The Flash cross-domain policy."
    )
    max_payload_bytes: PositiveBytes = Field(
        default=1_000_000,
        description="Largest collector payload kept; larger ones become bad rows.",
    )
    drop_payload_bytes: PositiveBytes = Field(
        default=2_097_152,
        description="Largest request body read; larger ones are answered with 413.",
    )
    max_message_bytes: PositiveBytes = Field(
        default=1_000_000,
        description="Largest message the transport takes; POST batches are split.",
    )
    collector_name: str = Field(
        default=f"snowplow-mini-collector-{badrows.VERSION}-nsq",
        min_length=1,
        description="Collector name stored in each payload (v_collector).",
    )
    shutdown_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long shutdown waits for requests in flight."
    )
    nsq: nsq_boundary.PublisherSettings = Field(
        default_factory=nsq_boundary.PublisherSettings,
        description="Where the collector command publishes (the local Mini does not use it).",
    )


def load(**overrides: Any) -> CollectorSettings:
    """Read the settings from the process environment; ``overrides`` win over it.

    Raises ``InvalidSettingsError`` listing every problem with its environment variable.
    """
    return configuring.load(CollectorSettings, component="collector", **overrides)
