"""Reads of the run database for the commands people and scripts call most, with no SQLAlchemy in the
process once their statements are compiled.

`relctl leaderboard` and `relctl list` are whole processes that run a few statements each. On a small
host, importing SQLAlchemy costs such a process about as much as its statements (140 ms), so these
commands run their statements on the database's own driver (psycopg, sqlite3). The statements are
still written once, in SQLAlchemy Core (read_statements.py): the first call of each shape builds and
compiles it for the database's dialect, and keeps the text in RELCTL_HOME/cache, in a file named by
the dialect and a digest of the modules that build statements and of SQLAlchemy's version, so that a
changed statement is never served from an old file. Values are always bound parameters, never part of the kept text.

A database URL these drivers do not take (another driver, URL options) is read through SQLAlchemy,
by the same statements (AlchemyReads).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from relctl_core.errors import InputError, first_line
from relctl_core.revisions import head_revision
from relctl_core.settings import Settings, redact_url

# What the compiled text depends on: the statements and the schema they read.
_SOURCES = ("read_statements.py", "tables.py", "states.py", "names.py")
_PACKAGE = Path(__file__).resolve().parent


class Reads(Protocol):
    """Runs a read statement of one shape with its parameters; ``build`` makes it where needed."""

    def rows(self, shape: str, build: Callable[[], Any], params: dict[str, Any]) -> list[Any]: ...


def statements() -> Any:
    """The statement builders (read_statements.py), imported with SQLAlchemy only where a statement
    must be built: a call served from the kept text never imports them."""
    from relctl_core import read_statements

    return read_statements


def scalar(reads: Reads, shape: str, build: Callable[[], Any], params: dict[str, Any]) -> Any:
    found = reads.rows(shape, build, params)
    return found[0][0] if found else None


class AlchemyReads:
    """Read statements on a SQLAlchemy connection (the UI, tests, URLs the drivers do not take)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def rows(self, shape: str, build: Callable[[], Any], params: dict[str, Any]) -> list[Any]:
        return list(self.connection.execute(build(), params).all())


def unusable_database(url: str, exc: BaseException) -> InputError:
    return InputError(
        f"cannot use the run database {redact_url(url)}: {first_line(exc)}", path="RELCTL_DATABASE_URL"
    )


@cache
def _digest() -> str:
    """Of the modules that build the statements and of the SQLAlchemy that compiles them (its package
    file, which names its version: found without importing it)."""
    from importlib.util import find_spec

    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((_PACKAGE / name).read_bytes())
    found = find_spec("sqlalchemy")
    if found is not None and found.origin:
        digest.update(Path(found.origin).read_bytes())
    return digest.hexdigest()[:16]


@cache
def _row_type(names: tuple[str, ...]) -> Any:
    return namedtuple("Row", names, rename=True)  # type: ignore[misc]  # noqa: PYI024


class DirectReads:
    """Read statements on a psycopg or sqlite3 connection, from compiled text kept on disk."""

    def __init__(self, url: str, dialect: str, connection: Any, cache_dir: Path) -> None:
        self.url, self.dialect, self.connection = url, dialect, connection
        self.cache_file = cache_dir / f"reads-{dialect}-{_digest()}.json"
        self._compiled: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._compiled is None:
            try:
                self._compiled = json.loads(self.cache_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._compiled = {}
        return self._compiled

    def compiled(self, shape: str, build: Callable[[], Any]) -> dict[str, Any]:
        known = self._load()
        if shape not in known:
            known[shape] = self._compile(build)
            self._keep(shape, known[shape])
        return known[shape]

    def _compile(self, build: Callable[[], Any]) -> dict[str, Any]:
        from sqlalchemy.engine import make_url

        dialect = make_url(self.url).get_dialect()()
        compiled = build().compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        defaults = {}
        for name, value in compiled.params.items():
            if value is None:
                continue  # a named parameter: every call gives its own
            # The constants SQLAlchemy bound (states, separators, JSON paths), as its driver would get
            # them: a JSON path, say, goes to SQLite as '$."mode"'.
            process = compiled.binds[name].type._cached_bind_processor(dialect)
            defaults[name] = process(value) if process is not None else value
        return {
            "sql": compiled.string,
            "order": list(compiled.positiontup) if compiled.positional else None,
            "defaults": defaults,
            "names": sorted(name for name, value in compiled.params.items() if value is None),
        }

    def _keep(self, shape: str, entry: dict[str, Any]) -> None:
        """Add one shape to the file, written whole under a draft name and renamed into place, so that
        a reader never sees half of it; a home that cannot be written only costs the next call a compile."""
        with suppress(OSError, TypeError, ValueError):
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            try:
                kept = json.loads(self.cache_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                kept = {}
            kept[shape] = entry
            draft = self.cache_file.with_name(f".{self.cache_file.name}.{os.getpid()}")
            draft.write_text(json.dumps(kept), encoding="utf-8")
            draft.replace(self.cache_file)

    def rows(self, shape: str, build: Callable[[], Any], params: dict[str, Any]) -> list[Any]:
        entry = self.compiled(shape, build)
        missing = [name for name in entry["names"] if name not in params]
        if missing:
            raise TypeError(f"statement {shape!r} needs {missing}")
        values = {**entry["defaults"], **params}
        arguments = tuple(values[name] for name in entry["order"]) if entry["order"] is not None else values
        cursor = self.connection.cursor()
        try:
            cursor.execute(entry["sql"], arguments)
            row = _row_type(tuple(column[0] for column in cursor.description))
            return [row(*found) for found in cursor.fetchall()]
        finally:
            cursor.close()

    def revision(self) -> str | None:
        """The schema revision the database is at; None where it has none (or no tables)."""
        cursor = self.connection.cursor()
        try:
            cursor.execute("SELECT version_num FROM alembic_version")
            found = cursor.fetchone()
            return found[0] if found else None
        except Exception:
            return None
        finally:
            cursor.close()


def _driver_connection(url: str) -> tuple[str, Callable[[], Any], type[BaseException]] | None:
    """(dialect, connect, the driver's could-not-connect error) for a URL these drivers take as it is."""
    if url.startswith("sqlite:///") and "?" not in url:
        import sqlite3

        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            return None  # a new database: SQLAlchemy's path creates its schema

        def connect_sqlite() -> Any:
            connection = sqlite3.connect(
                path, timeout=30
            )  # rides out a writer's short lock, as engine.py does
            connection.execute("PRAGMA busy_timeout=30000")
            return connection

        return "sqlite", connect_sqlite, sqlite3.OperationalError
    if url.startswith("postgresql+psycopg://") and "?" not in url:  # options may be SQLAlchemy's own
        try:
            import psycopg
        except ImportError:
            return None
        conninfo = "postgresql://" + url.removeprefix("postgresql+psycopg://")
        return "postgresql", lambda: psycopg.connect(conninfo, autocommit=True), psycopg.OperationalError
    return None


@contextmanager
def read_scope(settings: Settings) -> Iterator[Reads]:
    """Reads of the run database at settings.database_url, checked to be at the current schema (an
    empty one gets it, an outdated one is refused): on the database's own driver where it can be,
    else through SQLAlchemy."""
    url = settings.database_url
    driver = _driver_connection(url)
    if driver is not None:
        dialect, connect, unreachable = driver
        try:
            connection = connect()
        except unreachable as exc:
            raise unusable_database(url, exc) from None  # as check_database says it, at once
        try:
            direct = DirectReads(url, dialect, connection, settings.home / "cache")
            if direct.revision() != head_revision():
                from relctl_core.migrate import check_database

                check_database(url)  # creates the schema in an empty database, refuses an outdated one
            yield direct
        finally:
            connection.close()
        return
    from relctl_core.engine import connection_scope
    from relctl_core.migrate import check_database

    check_database(url)
    with connection_scope(url) as alchemy:
        yield AlchemyReads(alchemy)
