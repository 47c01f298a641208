"""``sandbox events`` queries against a real Elasticsearch holding sink-shaped indexes."""

from __future__ import annotations

import uuid

import pytest

from snowplow_operator import sandbox_events
from tests.sandbox import elasticsearch_data

pytestmark = pytest.mark.elasticsearch


@pytest.fixture
def indexes(elasticsearch) -> tuple[sandbox_events.Post, str, str]:
    suffix = uuid.uuid4().hex[:8]
    good_index, bad_index = f"good-{suffix}", f"bad-{suffix}"
    elasticsearch_data.fill(elasticsearch.url, good_index=good_index, bad_index=bad_index)
    return sandbox_events.direct(elasticsearch.url), good_index, bad_index


def test_counts_have_the_shape_of_micro_all(indexes) -> None:
    post, good_index, bad_index = indexes

    assert sandbox_events.counts(post, good_index=good_index, bad_index=bad_index) == {
        "total": 5,
        "good": 3,
        "bad": 2,
    }


def test_missing_indexes_count_as_empty(indexes) -> None:
    post, _, _ = indexes

    assert sandbox_events.counts(post, good_index="no-such-good", bad_index="no-such-bad") == {
        "total": 0,
        "good": 0,
        "bad": 0,
    }


def test_good_items_are_newest_first_in_micro_shape(indexes) -> None:
    post, good_index, _ = indexes

    items = sandbox_events.good(post, index=good_index)

    assert [item["eventType"] for item in items] == ["unstruct", "page_view", "page_view"]
    click = items[0]
    assert click["schema"] == elasticsearch_data.CLICK
    assert click["contexts"] == ["contexts_com_acme_user_1"]
    assert click["event"]["unstruct_event_com_acme_click_1"] == {"target": "buy"}
    assert click["rawEvent"]["context"]["timestamp"] == "2024-05-01T10:00:02.000Z"
    assert set(click) == {"rawEvent", "eventType", "schema", "contexts", "event", "incomplete"}


@pytest.mark.parametrize(
    ("filters", "expected_types"),
    [
        pytest.param({"event_type": "page_view"}, ["page_view", "page_view"], id="event-type"),
        pytest.param({"schema": elasticsearch_data.CLICK}, ["unstruct"], id="schema"),
        pytest.param({"contexts": [elasticsearch_data.USER]}, ["unstruct"], id="context"),
        pytest.param({"limit": 1}, ["unstruct"], id="limit"),
        pytest.param({"schema": "iglu:com.acme/other/jsonschema/1-0-0"}, [], id="no-match"),
    ],
)
def test_good_filters_match_like_the_local_mini(indexes, filters, expected_types) -> None:
    post, good_index, _ = indexes

    items = sandbox_events.good(post, index=good_index, **filters)

    assert [item["eventType"] for item in items] == expected_types


def test_bad_items_carry_the_row_with_the_sinks_renames_undone(indexes) -> None:
    post, _, bad_index = indexes

    items = sandbox_events.bad(post, index=bad_index)
    by_vendor = sandbox_events.bad(post, index=bad_index, vendor="com.acme", version="v1")

    generic = next(i for i in items if "generic_error" in i["badRow"]["schema"])
    assert generic["badRow"]["data"]["payload"] == "raw text"
    assert generic["errors"][0] == "generic_error: boom"
    assert [i["collectorPayload"]["vendor"] for i in by_vendor] == ["com.acme"]
    assert len(items) == 2


def test_a_schema_filter_that_is_no_iglu_uri_is_refused() -> None:
    with pytest.raises(sandbox_events.FilterError, match="schema: got 'click', expected iglu:"):
        sandbox_events.good_query(event_type=None, schema="click", contexts=None)
