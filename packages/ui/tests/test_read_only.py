"""The web app never writes: its connections to the run database (SQLite or PostgreSQL) refuse writes,
and a run database it cannot reach is a page that says so."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from relctl_core.settings import load_settings
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError

from relctl_ui.readonly import read_only_engine, read_only_settings, read_only_url


def test_a_write_through_the_apps_sqlite_engine_fails(seeded: Any) -> None:
    from relctl_core.tables import experiments

    engine = read_only_engine(seeded.url)
    with engine.connect() as connection:
        assert connection.scalar(select(experiments.c.name).where(experiments.c.id == seeded.finished)) == "first"
        with pytest.raises(DBAPIError, match="readonly|read-only|query_only|attempt to write"):
            connection.execute(update(experiments).where(experiments.c.id == seeded.finished).values(name="changed"))
            connection.commit()
    with engine.connect() as connection, pytest.raises(DBAPIError):
        connection.execute(text("CREATE TABLE intruder (id INTEGER)"))
    # The evaluator's own sessions on the app's settings are read-only too.
    from relctl_core.db import Experiment, session_scope

    with pytest.raises(DBAPIError), session_scope(read_only_settings(seeded.settings).database_url) as session:
        experiment = session.get(Experiment, seeded.finished)
        assert experiment is not None
        experiment.name = "changed"
    with engine.connect() as connection:
        assert connection.scalar(select(experiments.c.name).where(experiments.c.id == seeded.finished)) == "first"


def test_the_read_only_url_differs_from_the_writers_one(tmp_path: Path) -> None:
    import sqlite3

    from relctl_core.engine import get_engine

    # URI syntax in the folder's name (a space, #) is part of the file's name.
    database = tmp_path / "a b#1" / "relctl.db"
    database.parent.mkdir()
    sqlite3.connect(database).execute("create table t (x integer)").connection.close()
    url = f"sqlite:///{database}"
    assert read_only_url(url) != url
    with read_only_engine(url).connect() as connection:
        assert connection.scalar(text("select count(*) from t")) == 0
    get_engine(read_only_url(url)).dispose()
    server = "postgresql+psycopg://relctl:secret@db:5432/relctl"
    assert read_only_url(server) == "postgresql+psycopg://relctl:secret@db:5432/relctl?application_name=relctl-ui&options=-c+default_transaction_read_only%3Don"
    from relctl_core.errors import InputError

    with pytest.raises(InputError, match="in-memory"):
        read_only_url("sqlite://")


def test_a_write_through_the_apps_postgresql_engine_fails(skip_or_fail: Any) -> None:
    import psycopg
    from relctl_core.engine import get_engine
    from relctl_core.migrate import upgrade
    from relctl_core.tables import experiments

    server = os.environ.get("RELCTL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")
    admin = server.replace("+psycopg", "") + "/postgres"
    try:
        psycopg.connect(admin, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        skip_or_fail(f"PostgreSQL not reachable: {exc}")
    name = f"relctl_ui_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{server}/{name}"
    try:
        upgrade(url)
        with get_engine(url).begin() as connection:
            connection.execute(insert(experiments).values(name="first", status="done", spec_path="", spec_text="", spec={}))
        engine = read_only_engine(url)
        with engine.connect() as connection:
            assert connection.scalar(text("SHOW transaction_read_only")) == "on"
            assert connection.scalar(select(experiments.c.name)) == "first"
            with pytest.raises(DBAPIError, match="read-only transaction"):
                connection.execute(update(experiments).values(name="changed"))
        with engine.connect() as connection, pytest.raises(DBAPIError, match="read-only transaction"):
            connection.execute(text("CREATE TABLE intruder (id integer)"))
    finally:
        get_engine(url).dispose()
        get_engine(read_only_url(url)).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_unreachable_run_database_is_a_clear_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from relctl_ui.app import create_app

    monkeypatch.setenv("RELCTL_HOME", str(tmp_path / "home"))
    # Nothing listens on port 9 of this host: the connection is refused at once.
    monkeypatch.setenv("RELCTL_DATABASE_URL", "postgresql+psycopg://relctl:secret@127.0.0.1:9/relctl")
    client = TestClient(create_app(load_settings()), raise_server_exceptions=False)
    for url in ("/", "/leaderboard", "/experiments/1", "/compare?a=1&b=2"):
        answer = client.get(url)
        assert answer.status_code == 503, url
        assert "The run database cannot be reached" in answer.text and "127.0.0.1:9" in answer.text
        assert "secret" not in answer.text and "Traceback" not in answer.text
