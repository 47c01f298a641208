"""The ``sandbox`` subcommands parse (pure: no cluster)."""

from __future__ import annotations

import pytest

from snowplow_pipeline import cli


def test_every_sandbox_subcommand_parses_its_flags() -> None:
    parser = cli.build_parser()

    create = parser.parse_args(["sandbox", "create", "feature/x", "--ttl", "2h", "-n", "ci"])
    events = parser.parse_args(
        ["sandbox", "events", "--branch", "b", "--good", "--entity", "iglu:a/b/jsonschema/1-0-0"]
    )
    delete = parser.parse_args(["sandbox", "delete", "dev", "--context", "kind", "--wait"])

    assert (create.branch, create.ttl, create.namespace) == ("feature/x", "2h", "ci")
    assert (events.kind, events.contexts) == ("good", ["iglu:a/b/jsonschema/1-0-0"])
    assert (delete.name, delete.context, delete.wait) == ("dev", "kind", True)


def test_ttl_and_expires_at_are_exclusive_on_the_command_line(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(
            ["sandbox", "create", "b", "--ttl", "1h", "--expires-at", "2030-01-01T00:00:00Z"]
        )

    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
