"""Configurable enrichments, set up from upstream's enrichment config files.

``load_enrichments(folder)`` reads a folder of Snowplow enrichment configs (the same JSON
files upstream enrich takes with ``--enrichments``) and returns the enabled enrichments in
execution order, ready for ``processing.Enricher(enrichments=...)``. Each enrichment fills
atomic fields and may append derived entities; one that cannot do its work for an event
raises ``processing.EnrichmentFailure`` naming its config schema key, and the event becomes
an ``enrichment_failures`` bad row.

Execution order (upstream's documented order, restricted to what runs here):

1. ``ua_parser_config`` — ``ua_parser_context`` entity
2. ``referer_parser`` — ``refr_medium``, ``refr_source``, ``refr_term``
3. ``campaign_attribution`` — ``mkt_*``
4. ``event_fingerprint_config`` — ``event_fingerprint``
5. ``cookie_extractor_config`` — ``org.ietf/http_cookie`` entities
6. ``http_header_extractor_config`` — ``org.ietf/http_header`` entities
7. ``ip_lookups`` — ``geo_*``, ``ip_isp``, ``ip_organization``, ``ip_domain``, ``ip_netspeed``
8. ``anon_ip`` — masks ``user_ipaddress`` (after the lookups, which need the whole address)
9. ``pii_enrichment_config`` — hashes chosen fields, including what the others added

Nothing is ever downloaded: databases come bundled (referers, UA rules) or from local files.
"""

from __future__ import annotations

from snowplow_pipeline.enrich.enrichments.configs import EnrichmentConfigError
from snowplow_pipeline.enrich.enrichments.loading import (
    KINDS,
    close_enrichments,
    load_enrichments,
)

__all__ = ["KINDS", "EnrichmentConfigError", "close_enrichments", "load_enrichments"]
