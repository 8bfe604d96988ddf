"""The Alembic migrations create exactly the schema the ORM models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from relctl_core.db import Base, get_engine
from relctl_core.migrate import current_revision, ensure_schema, head_revision, upgrade


def assert_matches_models(url: str) -> None:
    with get_engine(url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], f"migrations and models disagree: {diff}"


def test_sqlite_upgrade_creates_the_model_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    assert current_revision(url) is None
    before, after = upgrade(url)
    assert (before, after) == (None, head_revision())
    assert current_revision(url) == head_revision()
    assert_matches_models(url)
    ensure_schema(url)  # already current: nothing to do


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
