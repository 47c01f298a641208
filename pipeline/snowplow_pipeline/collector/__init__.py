"""The collector: the HTTP endpoint trackers send events to.

It answers as upstream's Snowplow collector does and publishes each request as a collector
payload to ``RawEvents`` (oversized ones as bad rows to ``BadRawEvents``) through a
``topics.Publisher``. Modules, from the outside in: ``service`` (listening), ``app`` (routes),
``tracking`` (the tracking handlers), then the pure parts: ``capturing`` (request to payload),
``splitting`` (payload to messages), ``cookies`` (identity rules), ``responses``, ``metrics``
and ``settings``.
"""

from snowplow_pipeline.collector.app import build_app
from snowplow_pipeline.collector.service import serve, start
from snowplow_pipeline.collector.settings import CollectorSettings, InvalidSettingsError

__all__ = ["CollectorSettings", "InvalidSettingsError", "build_app", "serve", "start"]
