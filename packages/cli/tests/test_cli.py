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


READS = {"leaderboard": ["leaderboard", "--json"], "leaderboard by language": ["leaderboard", "--by", "language", "--json"], "list": ["list", "--json"]}


@pytest.mark.parametrize("args", READS.values(), ids=READS.keys())
def test_the_read_commands_import_neither_the_orm_nor_the_services(args: list[str], tmp_path) -> None:
    """The commands scripts call most start on the database's driver alone once their statements are
    compiled: SQLAlchemy, the ORM and the models, Celery, pydantic (the spec) and rich (under --json)
    are most of the start-up of any other command. The first call compiles (SQLAlchemy Core, no ORM)."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "RELCTL_HOME": str(tmp_path)}
    for key in ("RELCTL_DATABASE_URL", "RELCTL_BROKER_URL", "RELCTL_ARTIFACT_ROOT"):
        env.pop(key, None)
    assert CliRunner().invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    probe = (
        "import json, sys\n"
        "from relctl_cli.main import cli\n"
        f"cli({args!r}, standalone_mode=False)\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    heavy = {"sqlalchemy.orm", "relctl_core.db", "celery", "kombu", "pydantic", "rich", "alembic", "yaml", "numpy"}
    for call in ("compiling", "compiled"):
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) is not None  # it answered, in JSON
        loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
        if call == "compiling":
            assert "relctl_core.read_statements" in loaded and list((tmp_path / "cache").glob("reads-sqlite-*.json"))
        else:
            heavy |= {"sqlalchemy", "relctl_core.tables"}
        assert not heavy & loaded, f"relctl {' '.join(args)} ({call}) imported {sorted(heavy & loaded)}"
