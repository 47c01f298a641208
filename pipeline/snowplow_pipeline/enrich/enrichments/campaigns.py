"""Campaign attribution (``campaign_attribution``): marketing fields from the page URL's query.

Each ``mkt_*`` field takes the value of the first of its configured query parameters that is
present and not empty, in the configured order. Click ids (``gclid`` → Google, ``msclkid`` →
Microsoft, ``dclid`` → DoubleClick, plus any ``mktClickId`` entries, which win on clashes)
fill ``mkt_clickid`` and ``mkt_network`` from the first click-id parameter in the query. Only
the ``static`` mapping exists, as upstream.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from snowplow_pipeline.enrich import adapters, transform
from snowplow_pipeline.enrich.enrichments import configs

DEFAULT_CLICK_IDS = {"gclid": "Google", "msclkid": "Microsoft", "dclid": "DoubleClick"}
FIELDS = {
    "mktMedium": "mkt_medium",
    "mktSource": "mkt_source",
    "mktTerm": "mkt_term",
    "mktContent": "mkt_content",
    "mktCampaign": "mkt_campaign",
}


class CampaignAttribution:
    def __init__(
        self, *, parameters: dict[str, tuple[str, ...]], click_ids: dict[str, str]
    ) -> None:
        # (field, parameter names) pairs, empty lists dropped: nothing to look at per event.
        self.parameters = [(field, names) for field, names in parameters.items() if names]
        self.click_ids = click_ids

    def enrich(
        self, fields: dict[str, str], event: adapters.RawEvent, derived: list[dict[str, Any]]
    ) -> None:
        query = fields.get("page_urlquery")
        if not query:
            return
        pairs = parse_qsl(query, keep_blank_values=True)
        values: dict[str, str] = {}
        for name, value in pairs:
            if value and name not in values:
                values[name] = value
        for field, names in self.parameters:
            for name in names:
                if name in values:
                    fields[field] = transform.clean(values[name])
                    break
        for name, value in values.items():
            network = self.click_ids.get(name)
            if network is not None:
                fields["mkt_clickid"] = transform.clean(value)
                fields["mkt_network"] = network
                break


def build(config: configs.EnrichmentConfig) -> CampaignAttribution:
    configured = config.parameters["fields"]
    parameters = {field: tuple(configured[key]) for key, field in FIELDS.items()}
    click_ids = {**DEFAULT_CLICK_IDS, **configured.get("mktClickId", {})}
    return CampaignAttribution(parameters=parameters, click_ids=click_ids)
