"""Collector settings: documented defaults, the environment, and every problem at once."""

from __future__ import annotations

import os

import pytest
from pydantic import BaseModel

from snowplow_pipeline.collector import CollectorSettings, InvalidSettingsError
from snowplow_pipeline.collector import settings as collector_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(collector_settings.ENV_PREFIX):
            monkeypatch.delenv(name)


def test_defaults_match_upstream_and_mini_choices() -> None:
    settings = collector_settings.load()

    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.cookie.model_dump() == {
        "enabled": True,
        "name": "sp",
        "expiration_days": 365,
        "domains": [],
        "fallback_domain": None,
        "secure": True,
        "http_only": False,
        "same_site": "None",
    }
    assert settings.cors.max_age_seconds == 3600
    assert settings.do_not_track_cookie.enabled is False
    assert settings.redirect.model_dump() == {"enabled": False, "allowed_hosts": []}
    assert settings.crossdomain.model_dump() == {"enabled": False, "domains": ["*"], "secure": True}
    assert settings.path_mappings == {}
    assert settings.max_payload_bytes == 1_000_000
    assert settings.drop_payload_bytes == 2_097_152
    assert settings.max_message_bytes == 1_000_000
    assert settings.collector_name.startswith("snowplow-mini-collector-")


def test_every_field_has_a_description() -> None:
    nested = [field.annotation for field in CollectorSettings.model_fields.values()]
    groups: list[type[BaseModel]] = [CollectorSettings]
    groups += [
        group for group in nested if isinstance(group, type) and issubclass(group, BaseModel)
    ]

    undocumented = [
        f"{group.__name__}.{name}"
        for group in groups
        for name, field in group.model_fields.items()
        if not field.description
    ]

    assert undocumented == []


def test_nested_settings_are_read_from_double_underscore_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_PORT", "9090")
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_COOKIE__SAME_SITE", "Lax")
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_COOKIE__DOMAINS", '["acme.com", "acme.org"]')
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_REDIRECT__ENABLED", "true")
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_PATH_MAPPINGS", '{"/acme/track": "/r/tp2"}')

    settings = collector_settings.load()

    assert settings.port == 9090
    assert settings.cookie.same_site == "Lax"
    assert settings.cookie.domains == ["acme.com", "acme.org"]
    assert settings.redirect.enabled is True
    assert settings.path_mappings == {"/acme/track": "/r/tp2"}


def test_invalid_settings_list_every_problem_with_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_PORT", "99999")
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_COOKIE__SAME_SITE", "none")
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_DO_NOT_TRACK_COOKIE__VALUE", "(unclosed")
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_MAX_MESSAGE_BYTES", "0")
    monkeypatch.setenv(
        "SNOWPLOW_COLLECTOR_PATH_MAPPINGS", '{"/acme/track": "/elsewhere", "nopath": "/r/tp2"}'
    )

    with pytest.raises(InvalidSettingsError) as raised:
        collector_settings.load()

    problems = raised.value.problems
    assert [problem.split(":")[0] for problem in problems] == [
        "SNOWPLOW_COLLECTOR_PORT",
        "SNOWPLOW_COLLECTOR_COOKIE__SAME_SITE",
        "SNOWPLOW_COLLECTOR_DO_NOT_TRACK_COOKIE__VALUE",
        "SNOWPLOW_COLLECTOR_PATH_MAPPINGS['/acme/track']",
        "SNOWPLOW_COLLECTOR_PATH_MAPPINGS['nopath']",
        "SNOWPLOW_COLLECTOR_MAX_MESSAGE_BYTES",
    ]
    assert "less than or equal to 65535 (got '99999')" in problems[0]
    assert "'None', 'Lax' or 'Strict' (got 'none')" in problems[1]
    assert "not a regular expression" in problems[2]
    assert str(raised.value).startswith("invalid collector settings:\n  SNOWPLOW_COLLECTOR_PORT")


def test_enabled_do_not_track_cookie_needs_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_DO_NOT_TRACK_COOKIE__ENABLED", "true")

    with pytest.raises(InvalidSettingsError) as raised:
        collector_settings.load()

    [problem] = raised.value.problems
    assert problem.startswith("SNOWPLOW_COLLECTOR_DO_NOT_TRACK_COOKIE: ")
    assert "a cookie name is required" in problem


def test_variable_that_is_not_json_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOWPLOW_COLLECTOR_COOKIE__DOMAINS", "[acme.com")

    with pytest.raises(InvalidSettingsError) as raised:
        collector_settings.load()

    assert raised.value.problems == [
        "SNOWPLOW_COLLECTOR_COOKIE (or one of SNOWPLOW_COLLECTOR_COOKIE__*): "
        "not valid JSON, expected a JSON list or object"
    ]
