"""The Alembic migrations create exactly the schema the ORM models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from relctl_core.db import Base, get_engine
from relctl_core.migrate import alembic_config, current_revision, ensure_schema, head_revision, upgrade


def test_the_head_revision_read_from_the_files_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def assert_matches_models(url: str) -> None:
    with get_engine(url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        dialect = connection.dialect
        reflected = {table: {i["name"]: i for i in inspect(connection).get_indexes(table)} for table in Base.metadata.tables}
    assert diff == [], f"migrations and models disagree: {diff}"
    # Alembic compares an index's columns, not which rows a partial index holds: compare those here.
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            option = f"{dialect.name}_where"
            modelled = _predicate(index.dialect_kwargs.get(option), dialect, table.name)
            found = _predicate(reflected[table.name][index.name]["dialect_options"].get(option), dialect, table.name)
            assert modelled == found, f"{index.name}: the models say WHERE {modelled}, the database {found}"


def _predicate(clause: object, dialect: object, table: str) -> str | None:
    """A partial index's WHERE clause as comparable text: compiled, lower case, without the table's
    name, parentheses or spaces."""
    if clause is None:
        return None
    text = clause if isinstance(clause, str) else str(clause.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    return "".join(ch for ch in text.lower().replace(f"{table}.", "") if ch not in "() \n")


def test_sqlite_upgrade_creates_the_model_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert current_revision(url) is None
    before, after = upgrade(url)
    assert (before, after) == (None, head_revision())
    assert current_revision(url) == head_revision()
    assert_matches_models(url)
    ensure_schema(url)  # already current: nothing to do


def test_an_outdated_database_is_refused_until_upgraded(tmp_path: Path) -> None:
    from alembic import command

    from relctl_core.errors import RelctlError

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    command.upgrade(alembic_config(url), "0001")
    with pytest.raises(RelctlError, match=f"at schema 0001, not {head_revision()}: run `relctl db upgrade`"):
        ensure_schema(url)
    assert upgrade(url) == ("0001", head_revision())
    assert_matches_models(url)


def test_postgresql_upgrade_creates_the_model_schema(skip_or_fail) -> None:
    import psycopg

    server = os.environ.get("RELCTL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")
    admin = server.replace("+psycopg", "") + "/postgres"
    try:
        psycopg.connect(admin, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        skip_or_fail(f"PostgreSQL not reachable: {exc}")
    name = f"relctl_migrate_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{server}/{name}"
    try:
        ensure_schema(url)
        assert current_revision(url) == head_revision()
        assert_matches_models(url)
    finally:
        get_engine(url).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
