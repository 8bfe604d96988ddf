"""Schema migrations of the run database (Alembic), applied by `relctl db upgrade` or on first use."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

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


# Workers on several hosts may start against one empty PostgreSQL database at once: the first
# takes this advisory lock and creates the schema, the others wait and then find it done.
_SCHEMA_LOCK = 0x72656C63


def upgrade(url: str, *, only_if_empty: bool = False) -> tuple[str | None, str]:
    """Upgrade the database to the newest schema; returns (revision before, revision after)."""
    engine = get_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK})
            connection.commit()
        try:
            before = MigrationContext.configure(connection).get_current_revision()
            if not (only_if_empty and (before is not None or inspect(connection).get_table_names())):
                config = alembic_config(url)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
        finally:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK})
                connection.commit()
    return before, head_revision()


def ensure_schema(url: str) -> None:
    """Create the schema in an empty database; refuse to write into an outdated one."""
    revision = current_revision(url)
    if revision == head_revision():
        return
    if revision is None and not inspect(get_engine(url)).get_table_names():
        upgrade(url, only_if_empty=True)
        return
    raise RelctlError(f"the run database is at schema {revision or 'unknown'}, not {head_revision()}: run `relctl db upgrade`")
