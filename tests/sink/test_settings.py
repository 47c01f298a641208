"""Sink settings: defaults that follow from the kind, and problems named by their variable."""

from __future__ import annotations

import pytest

from snowplow_pipeline.sink import handling, settings


@pytest.mark.parametrize(
    ("kind", "index", "channel", "topics"),
    [
        ("good", "good", "ESLoaderChannelGood", ("EnrichedEvents",)),
        ("bad", "bad", "ESLoaderChannelBad", ("BadRawEvents", "BadEnrichedEvents")),
    ],
)
def test_kind_picks_the_index_the_channel_and_the_topics(
    kind: str, index: str, channel: str, topics: tuple[str, ...]
) -> None:
    loaded = settings.load(kind=kind)

    assert (loaded.index_name, loaded.channel, handling.TOPICS[loaded.kind]) == (
        index,
        channel,
        topics,
    )


def test_nested_settings_are_read_from_double_underscore_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNOWPLOW_SINK_ELASTICSEARCH__URLS", '["http://es:9200"]')
    monkeypatch.setenv("SNOWPLOW_SINK_BATCH__MAX_DOCUMENTS", "1000")
    monkeypatch.setenv("SNOWPLOW_SINK_NSQ__CHANNEL", "mine")

    loaded = settings.load(kind="good", nsq={"max_in_flight": 5})

    assert loaded.elasticsearch.urls == ["http://es:9200"]
    assert loaded.batch.max_documents == 1000
    assert (loaded.channel, loaded.nsq.max_in_flight) == ("mine", 5)


def test_every_invalid_setting_is_listed_with_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNOWPLOW_SINK_INDEX__NAME", "Upper")
    monkeypatch.setenv("SNOWPLOW_SINK_INDEX__KEYWORD_MAX_CHARS", "40000")
    monkeypatch.setenv("SNOWPLOW_SINK_NSQ__NSQD_TCP_ADDRESSES", '["nsqd"]')
    monkeypatch.setenv("SNOWPLOW_SINK_ELASTICSEARCH__PASSWORD", "")

    with pytest.raises(settings.InvalidSettingsError) as caught:
        settings.load(kind="good", elasticsearch={"password": ["s3cret"]})

    variables = [problem.split(":")[0] for problem in caught.value.problems]
    assert variables == [
        "SNOWPLOW_SINK_ELASTICSEARCH__PASSWORD",
        "SNOWPLOW_SINK_INDEX__NAME",
        "SNOWPLOW_SINK_INDEX__KEYWORD_MAX_CHARS",
        "SNOWPLOW_SINK_NSQ__NSQD_TCP_ADDRESSES",
    ]
    assert "s3cret" not in str(caught.value)
