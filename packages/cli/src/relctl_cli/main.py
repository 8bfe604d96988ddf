"""The relctl command: submit, run, watch and rank multilingual search relevance experiments.

Each command lives in a module of relctl_cli.commands, imported when a command line names it: `relctl
leaderboard` never imports what `relctl run` needs (the ORM, Celery, the trainer), nor the reverse.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import import_module
from typing import Any

import click
from relctl_core.errors import RelctlError

from relctl_cli.render import err_console

# relctl's own commands: name -> "module:attribute" under relctl_cli.commands.
COMMANDS = {
    "validate": "validate:validate",
    "submit": "running:submit",
    "run": "running:run",
    "retry": "running:retry",
    "cancel": "running:cancel",
    "worker": "running:worker",
    "status": "inspection:status",
    "logs": "inspection:logs",
    "show": "inspection:show",
    "leaderboard": "ranking:leaderboard_command",
    "list": "ranking:list_experiments",
    "models": "store:models",
    "db": "store:db",
}


@cache
def plugin_commands() -> dict[str, Any]:
    """Commands that installed packages add (entry points ``relctl.commands``), by name, not yet loaded."""
    from importlib.metadata import entry_points

    return {plugin.name: plugin for plugin in entry_points(group="relctl.commands")}


def own_command(name: str) -> click.Command:
    module, attribute = COMMANDS[name].split(":")
    command: click.Command = getattr(import_module(f"relctl_cli.commands.{module}"), attribute)
    return command


class RelctlGroup(click.Group):
    """Turns relctl's own errors into a one-line message and the right exit status (2 for bad input).

    Commands load when asked for: a command of relctl's own imports its module alone, and never reads
    the installed packages' metadata or imports another package's command module (and what that
    module imports)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS, *plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = own_command(cmd_name)
            self.add_command(command, cmd_name)
        elif command is None and cmd_name in plugin_commands():
            command = plugin_commands()[cmd_name].load()
            self.add_command(command, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RelctlError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)


@click.group(cls=RelctlGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="relctl")
def cli() -> None:
    """relctl: train and rank multilingual e-commerce search relevance models.

    Describe an experiment in experiment.yaml, then run it here (`relctl run`) or on workers
    (`relctl submit`). Every run, fold, stage and metric lands in the run database.

    \b
    Settings (environment):
      RELCTL_HOME           state folder (default ~/.relctl)
      RELCTL_DATABASE_URL   run database (default SQLite in RELCTL_HOME)
      RELCTL_BROKER_URL     Celery broker (default: a folder in RELCTL_HOME)
      RELCTL_ARTIFACT_ROOT  artifacts (default RELCTL_HOME/artifacts)

    \b
    Example:
      relctl models install multilingual-e5-small
      relctl run examples/demo/experiment.yaml
    """

