"""`relctl export`: finished experiments copied into other tools."""

from __future__ import annotations

import click

from relctl_evaluator.export_mlflow import mlflow_command


@click.group()
def export() -> None:
    """Copy finished experiments into other tools.

    \b
    Example:
      relctl export mlflow 12 --tracking-uri http://127.0.0.1:5000
    """


export.add_command(mlflow_command)
