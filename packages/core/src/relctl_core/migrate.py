"""Schema migrations of the run database (Alembic), applied by `relctl db upgrade` or on first use."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from relctl_core.db import get_engine
from relctl_core.errors import RelctlError

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: str) -> tuple[str | None, str]:
    """Upgrade the database to the newest schema; returns (revision before, revision after)."""
    before = current_revision(url)
    command.upgrade(alembic_config(url), "head")
    return before, head_revision()


def ensure_schema(url: str) -> None:
    """Create the schema in an empty database; refuse to write into an outdated one."""
    revision = current_revision(url)
    if revision == head_revision():
        return
    if revision is None and not inspect(get_engine(url)).get_table_names():
        upgrade(url)
        return
    raise RelctlError(f"the run database is at schema {revision or 'unknown'}, not {head_revision()}: run `relctl db upgrade`")
