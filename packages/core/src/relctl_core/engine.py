"""Connections to the run database: one engine per URL, and waiting out a database that restarts.

Core only (no ORM): read-only commands connect through here without importing the ORM.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger("relctl.db")
T = TypeVar("T")

# Seconds to keep trying an unreachable run database (RELCTL_DB_RETRY_SECONDS, see settings.py).
_DEFAULT_RETRY_SECONDS = 600.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the CLI read progress while workers write; the busy timeout rides out short write locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_ENGINES: dict[str, Engine] = {}


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    _ENGINES[url] = engine
    return engine


def forget_inherited_connections() -> None:
    """In a forked child (a prefork pool process): drop the connections the parent's pools hold,
    without closing them under the parent, so that the child opens its own. Two processes talking
    over one connection corrupt each other's transactions."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)


def retry_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("RELCTL_DB_RETRY_SECONDS") or _DEFAULT_RETRY_SECONDS))
    except ValueError:
        return _DEFAULT_RETRY_SECONDS


def is_unreachable(exc: BaseException) -> bool:
    """An error that says the database could not be reached or dropped the connection (a restart, a
    network cut, SQLite's writer lock held past its timeout), as opposed to one about the statement."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def backoff(attempt: int) -> float:
    return min(2.0, 0.2 * 2**attempt) * (0.5 + random.random() / 2)


def wait_for(connect: Callable[[], T], wait: float | None = None, *, warn: bool = True) -> T:
    """``connect()`` once the database takes a connection: with backoff, for up to
    RELCTL_DB_RETRY_SECONDS (or ``wait`` seconds), so that a run database that restarts makes workers
    and watchers pause rather than fail. ``warn``: log the first failure."""
    deadline = time.monotonic() + (retry_seconds() if wait is None else wait)
    attempt = 0
    while True:
        try:
            return connect()
        except Exception as exc:
            if not is_unreachable(exc) or time.monotonic() > deadline:
                raise
            if warn and attempt == 0:
                log.warning("run database unreachable (%s); retrying", str(exc).splitlines()[0])
            time.sleep(backoff(attempt))
            attempt += 1


@contextmanager
def connection_scope(url: str, *, wait: float | None = None) -> Iterator[Connection]:
    """A Core connection to the run database, for reading: waits for the database like
    db.session_scope, and rolls back what it read in when done."""
    connection = wait_for(get_engine(url).connect, wait)
    try:
        yield connection
    finally:
        connection.close()


def retry_call(work: Callable[[], T]) -> T:
    """Call ``work`` again, with backoff, while it fails because the run database is unreachable."""
    return wait_for(work, warn=False)
