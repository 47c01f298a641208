"""The environment rendered for the pipeline processes, checked against their settings classes.

These tests are the alignment contract with pipeline/: each rendered variable set is loaded by
the real settings class of the process, so a renamed or removed setting fails here.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from snowplow_operator import pipeline_env, specs
from snowplow_pipeline.collector import settings as collector_settings
from snowplow_pipeline.enrich import settings as enrich_settings
from snowplow_pipeline.sink import settings as sink_settings

WIRING = pipeline_env.Wiring(
    nsqd_tcp_address="dev-nsq.ns.svc:4150",
    nsqd_http_address="dev-nsq.ns.svc:4151",
    elasticsearch_url="http://dev-elasticsearch.ns.svc:9200",
)


def test_collector_environment_is_exact() -> None:
    process = pipeline_env.collector(specs.Collector(), WIRING)

    assert process.args == ("snowplow-mini", "--log-format", "json", "collector")
    assert process.env == {
        "SNOWPLOW_COLLECTOR_HOST": "0.0.0.0",
        "SNOWPLOW_COLLECTOR_PORT": "8080",
        "SNOWPLOW_COLLECTOR_NSQ__NSQD_HTTP_ADDRESS": "dev-nsq.ns.svc:4151",
        "SNOWPLOW_COLLECTOR_COOKIE__ENABLED": "true",
        "SNOWPLOW_COLLECTOR_COOKIE__NAME": "sp",
        "SNOWPLOW_COLLECTOR_COOKIE__DOMAINS": "[]",
        "SNOWPLOW_COLLECTOR_COOKIE__SAME_SITE": "None",
        "SNOWPLOW_COLLECTOR_COOKIE__SECURE": "true",
        "SNOWPLOW_COLLECTOR_COOKIE__HTTP_ONLY": "false",
        "SNOWPLOW_COLLECTOR_COOKIE__EXPIRATION_DAYS": "365",
    }


def test_collector_environment_loads_into_collector_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = specs.Collector(
        cookie=specs.Cookie(domains=["acme.test"], same_site="Lax"),
        settings={"MAX_PAYLOAD_BYTES": "500000"},
    )
    for name, value in pipeline_env.collector(spec, WIRING).env.items():
        monkeypatch.setenv(name, value)

    loaded = collector_settings.load()

    assert (loaded.host, loaded.port, loaded.max_payload_bytes) == ("0.0.0.0", 8080, 500000)
    assert (loaded.cookie.domains, loaded.cookie.same_site) == (["acme.test"], "Lax")
    assert loaded.nsq.nsqd_http_address == "dev-nsq.ns.svc:4151"


def test_enrich_environment_loads_into_enrich_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    env = pipeline_env.enrich(WIRING).env
    assert env["SNOWPLOW_ENRICH_ENRICHMENTS"] == "/etc/snowplow/enrichments"
    assert env["SNOWPLOW_ENRICH_IGLU_RESOLVER"] == "/etc/snowplow/iglu/resolver.json"
    # The enrichments folder is a mounted ConfigMap in the pod; here, any existing folder.
    env["SNOWPLOW_ENRICH_ENRICHMENTS"] = str(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    loaded = enrich_settings.load()

    assert (loaded.host, loaded.port) == ("0.0.0.0", 8081)
    assert loaded.nsq.nsqd_tcp_addresses == ["dev-nsq.ns.svc:4150"]
    assert loaded.nsq.nsqd_http_address == "dev-nsq.ns.svc:4151"
    assert str(loaded.iglu_resolver) == "/etc/snowplow/iglu/resolver.json"


@pytest.mark.parametrize(
    ("kind", "channel"), [("good", "ESLoaderChannelGood"), ("bad", "ESLoaderChannelBad")]
)
def test_sink_environment_loads_into_sink_settings(
    monkeypatch: pytest.MonkeyPatch, kind: pipeline_env.SinkKind, channel: str
) -> None:
    process = pipeline_env.sink(kind, WIRING)
    for name, value in process.env.items():
        monkeypatch.setenv(name, value)

    loaded = sink_settings.load()

    assert process.args == ("snowplow-mini", "--log-format", "json", "sink", kind)
    assert (loaded.kind, loaded.index_name, loaded.channel) == (kind, kind, channel)
    assert (loaded.host, loaded.port) == ("0.0.0.0", 8090)
    assert loaded.nsq.nsqd_tcp_addresses == ["dev-nsq.ns.svc:4150"]
    assert loaded.elasticsearch.urls == ["http://dev-elasticsearch.ns.svc:9200"]
    assert json.loads(process.env["SNOWPLOW_SINK_ELASTICSEARCH__URLS"]) == loaded.elasticsearch.urls
