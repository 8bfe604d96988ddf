"""The relctl command's surface: every command documented with an example, errors as exit status 2."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from relctl_cli.main import cli


def all_commands() -> list[list[str]]:
    """Every command path, those of installed plugins included (they load when asked for)."""
    ctx = click.Context(cli)
    paths = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.list_commands(ctx)]
        else:
            paths.append([name])
    return paths


def test_the_verbs_a_user_expects_exist() -> None:
    expected = {"submit", "run", "worker", "status", "logs", "cancel", "retry", "list", "show", "leaderboard", "validate", "predict", "models", "db"}
    assert expected <= {path[0] for path in all_commands()}


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p))
def test_every_command_help_ends_with_an_example(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"relctl {' '.join(path)} --help has no example"


def test_unknown_experiment_is_bad_input(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RELCTL_HOME", str(tmp_path))
    for key in ("RELCTL_DATABASE_URL", "RELCTL_BROKER_URL", "RELCTL_ARTIFACT_ROOT"):
        monkeypatch.delenv(key, raising=False)
    from relctl_core import celery_app, db

    celery_app.reset_app()
    db.get_engine.cache_clear()
    db._sessionmaker.cache_clear()
    result = CliRunner().invoke(cli, ["status", "99"])
    assert result.exit_code == 2
    assert "no experiment 99" in result.output
