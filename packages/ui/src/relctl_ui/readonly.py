"""Read-only access to the run database: the URL and engine every page, and every evaluator call the
pages make, go through, so that the web app cannot write whatever its code does."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import quote

from relctl_core.engine import get_engine
from relctl_core.errors import InputError
from relctl_core.settings import Settings
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

APPLICATION_NAME = "relctl-ui"


def read_only_url(url: str) -> str:
    """The run database's URL, opened read-only: SQLite as a read-only URI file (mode=ro), PostgreSQL
    with read-only sessions. The URL differs from the writers' one, so that the read-only engine is
    never the engine a writer in the same process gets from get_engine()."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise InputError(f"a web app cannot read an in-memory SQLite database ({url})", path="RELCTL_DATABASE_URL")
        path = Path(parsed.database).expanduser().resolve()
        # A driver name of its own: get_engine() treats plain sqlite:/// URLs as files to create. The
        # path quoted: SQLite reads %, ? and # in a URI file name as URI syntax.
        read_only = parsed.set(drivername="sqlite+pysqlite", database=f"file:{quote(str(path))}", query={"mode": "ro", "uri": "true"})
    elif backend == "postgresql":
        options = " ".join(filter(None, [parsed.query.get("options"), "-c default_transaction_read_only=on"]))  # type: ignore[list-item]
        read_only = parsed.update_query_dict({"options": options, "application_name": APPLICATION_NAME})
    else:
        raise InputError(f"the web app reads SQLite or PostgreSQL run databases, not {backend}", path="RELCTL_DATABASE_URL")
    return read_only.render_as_string(hide_password=False)


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # rides out a worker's short write locks
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _postgresql_read_only(dbapi_connection: Any, _record: Any) -> None:
    # The URL's options already make each transaction read-only; a session set so on connect keeps it
    # so behind a pooler that drops startup options.
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_connection.autocommit = autocommit


def read_only_engine(url: str) -> Engine:
    """The engine of ``read_only_url(url)``: get_engine()'s, so that the evaluator's own sessions on
    that URL share it, with the read-only settings made on every new connection."""
    engine = get_engine(read_only_url(url))
    listener = _sqlite_read_only if engine.dialect.name == "sqlite" else _postgresql_read_only
    if not event.contains(engine, "connect", listener):
        event.listen(engine, "connect", listener)
    return engine


def read_only_settings(settings: Settings) -> Settings:
    """``settings`` with the run database opened read-only, for the evaluator's functions the pages call
    (compare_runs, judged_board, build_report open their own sessions from settings.database_url)."""
    read_only_engine(settings.database_url)
    return dataclasses.replace(settings, database_url=read_only_url(settings.database_url))
