"""Schema migrations of the run database (Alembic), applied by `relctl db upgrade` or on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from relctl_core.engine import get_engine
from relctl_core.errors import RelctlError
from relctl_core.reads import unusable_database
from relctl_core.revisions import MIGRATIONS, head_revision

if TYPE_CHECKING:
    from alembic.config import Config

def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def current_revision(url: str) -> str | None:
    """The revision the database is at (Alembic's version table), None if it has none."""
    with get_engine(url).connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


# Workers on several hosts may start against one empty PostgreSQL database at once: the first
# takes this advisory lock and creates the schema, the others wait and then find it done.
_SCHEMA_LOCK = 0x72656C63


def upgrade(url: str, *, only_if_empty: bool = False) -> tuple[str | None, str]:
    """Upgrade the database to the newest schema; returns (revision before, revision after)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

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


def check_database(url: str) -> None:
    """ensure_schema(), with a database that cannot be reached reported as bad input."""
    try:
        ensure_schema(url)
    except Exception as exc:
        if type(exc).__module__.startswith("sqlalchemy"):
            raise unusable_database(url, exc) from None
        raise
