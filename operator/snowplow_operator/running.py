"""The operator process: settings, metrics server and kopf, started by ``snowplow-mini operator``.

kopf runs standalone (no peering objects), which fits the advised single replica with a
Recreate strategy. Watching is namespaced when namespaces are given, cluster-wide otherwise.
"""

from __future__ import annotations

import logging

import kopf
import pydantic_settings
from pydantic import Field

from snowplow_operator import handlers, images, lifecycle, metrics

logger = logging.getLogger(__name__)


class OperatorSettings(pydantic_settings.BaseSettings):
    """Settings of the operator process, from ``SNOWPLOW_OPERATOR_*`` and the command's flags."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix="SNOWPLOW_OPERATOR_", extra="forbid"
    )

    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty: every namespace."
    )
    kubeconfig: str | None = Field(
        None, description="kubeconfig file; default: in-cluster, then $KUBECONFIG."
    )
    workers: int = Field(4, ge=1, le=64, description="Reconciles running at the same time.")
    resync_seconds: float = Field(
        300.0, gt=0, description="Every SnowplowMini is reconciled at least this often."
    )
    metrics_host: str = Field("127.0.0.1", description="Address of the /metrics endpoint.")
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Port of the /metrics endpoint (0: no metrics server)."
    )
    liveness_url: str | None = Field(
        None, description="kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz."
    )
    max_ttl: str | None = Field(
        None,
        pattern=r"^([0-9]+(s|m|h|d))+$",
        description="Longest life of any sandbox after creation, e.g. 7d; none: no cap.",
    )
    expiry_action: lifecycle.ExpiryAction = Field(
        lifecycle.ExpiryAction.DELETE, description="What expiry does: delete or suspend."
    )
    expiry_warning_seconds: float = Field(
        600.0, ge=0, description="The ExpiringSoon Warning Event comes this long before expiry."
    )
    sweep_interval_seconds: float = Field(
        30.0, gt=0, le=3600, description="How often the sweeper looks for expired sandboxes."
    )
    pipeline_image: str | None = Field(
        None, description="Image of collector, enrich and sinks; default: this version's."
    )
    nsq_image: str | None = Field(None, description="Image of nsqd and nsqadmin.")
    elasticsearch_image: str | None = Field(None, description="Image of Elasticsearch.")
    kibana_image: str | None = Field(None, description="Image of Kibana and its Job.")

    def default_images(self) -> images.Defaults:
        """The built-in defaults, with each image the settings name instead."""
        chosen = {
            field: value
            for field, value in (
                ("pipeline", self.pipeline_image),
                ("nsq", self.nsq_image),
                ("elasticsearch", self.elasticsearch_image),
                ("kibana", self.kibana_image),
            )
            if value
        }
        return images.Defaults(**chosen)

    def policy(self) -> lifecycle.Policy:
        max_ttl = lifecycle.parse_duration(self.max_ttl) if self.max_ttl else None
        return lifecycle.Policy(
            max_ttl_seconds=max_ttl.total_seconds() if max_ttl else None,
            warning_seconds=self.expiry_warning_seconds,
            action=self.expiry_action,
        )


def run(settings: OperatorSettings) -> None:
    """Run until interrupted (SIGINT/SIGTERM make kopf stop gracefully)."""
    if settings.metrics_port:
        metrics.serve(host=settings.metrics_host, port=settings.metrics_port)
        logger.info("Serving metrics on %s:%d.", settings.metrics_host, settings.metrics_port)
    options = handlers.OperatorOptions(
        kubeconfig=settings.kubeconfig,
        workers=settings.workers,
        resync_seconds=settings.resync_seconds,
        namespaced=bool(settings.namespaces),
        policy=settings.policy(),
        sweep_interval_seconds=settings.sweep_interval_seconds,
        default_images=settings.default_images(),
    )
    logger.info(
        "Starting the SnowplowMini operator for %s.",
        ", ".join(settings.namespaces) if settings.namespaces else "all namespaces",
    )
    kopf.run(
        registry=handlers.registry,
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=settings.liveness_url,
        memo=kopf.Memo(options=options),
    )
