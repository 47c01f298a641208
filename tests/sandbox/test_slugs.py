"""The naming rule from branch names to SnowplowMini names and hostnames (pure)."""

from __future__ import annotations

import re

import pytest

from snowplow_operator import naming, slugs

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LONG_BRANCH = "feature/" + "x" * 192


@pytest.mark.parametrize(
    ("branch", "expected_prefix"),
    [
        pytest.param("main", "main-", id="plain"),
        pytest.param("feature/Big_Thing", "feature-big-thing-", id="slashes-and-capitals"),
        pytest.param("Fix--double//Seps__", "fix-double-seps-", id="runs-collapse"),
        pytest.param("café/ünïcode-分支", "cafe-unicode-", id="unicode"),
        pytest.param("123-hotfix", "b-123-hotfix-", id="starts-with-digit"),
        pytest.param("///", "b-", id="only-symbols"),
        pytest.param(
            "dependabot/npm_and_yarn/lodash-4.17.21", "dependabot-npm-and-yarn-", id="dots"
        ),
    ],
)
def test_branch_becomes_a_readable_slug_with_a_hash_suffix(
    branch: str, expected_prefix: str
) -> None:
    name = slugs.sandbox_name(branch)

    assert name.startswith(expected_prefix)
    assert name.endswith("-" + slugs.branch_hash(branch))
    assert DNS_LABEL.match(name)
    assert len(name) <= naming.MAX_NAME_LENGTH


def test_two_hundred_character_branch_is_cut_to_the_name_limit() -> None:
    name = slugs.sandbox_name(LONG_BRANCH)

    assert len(LONG_BRANCH) == 200
    assert len(name) == naming.MAX_NAME_LENGTH
    assert name == "feature-" + "x" * 23 + "-" + slugs.branch_hash(LONG_BRANCH)


def test_branches_with_the_same_slug_get_different_names() -> None:
    branches = ["feature/x", "Feature_X", "feature-x", "féature/x", LONG_BRANCH, LONG_BRANCH + "y"]

    names = {slugs.sandbox_name(branch) for branch in branches}

    assert len(names) == len(branches)


def test_the_same_branch_always_gets_the_same_name() -> None:
    assert slugs.sandbox_name("feature/Big_Thing") == slugs.sandbox_name("feature/Big_Thing")
    assert slugs.sandbox_name("feature/Big_Thing") == "feature-big-thing-22c6548d"


def test_hostname_is_the_name_under_the_domain() -> None:
    host = slugs.hostname("feature/Big_Thing", "Sandbox.Example.com.")

    assert host == "feature-big-thing-22c6548d.sandbox.example.com"
