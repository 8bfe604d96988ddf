"""The model store and the run database's schema: `relctl models`, `relctl db`."""

from __future__ import annotations

import click
from relctl_core.errors import InputError
from relctl_core.settings import load_settings, redact_url

from relctl_cli.render import console, emit_json, table


@click.group()
def models() -> None:
    """The model store: real models converted once for offline use."""


@models.command(name="list")
@click.option("--json", "as_json", is_flag=True)
def models_list(as_json: bool) -> None:
    """List installable and installed models.

    \b
    Example:
      relctl models list
    """
    from relctl_core import modelstore

    settings = load_settings()
    installed = modelstore.installed(settings)
    names = sorted(set(modelstore.providers()) | set(installed))
    rows = [{"name": n, "installed": n in installed, "path": installed.get(n, {}).get("path"), "source": installed.get(n, {}).get("source")} for n in names]
    if as_json:
        emit_json(rows)
        return
    console.print(table(f"model store: {settings.model_store}", ["name", "installed", "path", "source"], [list(r.values()) for r in rows]))


@models.command(name="install")
@click.argument("name")
@click.option("--force", is_flag=True, help="Convert again even if installed.")
def models_install(name: str, force: bool) -> None:
    """Convert a packaged model into the model store (once; later calls return at once).

    \b
    Example:
      relctl models install multilingual-e5-small
    """
    from relctl_core import modelstore

    settings = load_settings()
    with console.status(f"installing {name} into {settings.model_store} ..."):
        info, fresh = modelstore.install(settings, name, force=force)
    console.print(f"{name}: {'installed' if fresh else 'already installed'} at {info['path']}")


@click.group()
def db() -> None:
    """The run database."""


@db.command(name="upgrade")
def db_upgrade() -> None:
    """Create or upgrade the run database's schema (Alembic migrations).

    \b
    Example:
      RELCTL_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/relctl relctl db upgrade
    """
    from relctl_core.migrate import upgrade

    settings = load_settings()
    try:
        before, after = upgrade(settings.database_url)
    except Exception as exc:
        if type(exc).__module__.startswith("sqlalchemy"):
            raise InputError(f"cannot use the run database {redact_url(settings.database_url)}: {str(exc).splitlines()[0]}", path="RELCTL_DATABASE_URL") from None
        raise
    console.print(f"{redact_url(settings.database_url)}: schema {before or 'empty'} -> {after}")
