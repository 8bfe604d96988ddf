"""The run database: experiments, runs, stages, datasets, artifacts, metrics, translations and events."""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

# Stage and experiment states. A stage goes pending -> queued -> running -> done | failed | cancelled.
PENDING, QUEUED, RUNNING, DONE, FAILED, CANCELLED = "pending", "queued", "running", "done", "failed", "cancelled"
ACTIVE = (PENDING, QUEUED, RUNNING)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, dt.datetime: DateTime(timezone=True)}


class Experiment(Base):
    __tablename__ = "experiments"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    spec_path: Mapped[str] = mapped_column(Text)
    spec_text: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class Run(Base):
    """One combination of the sweep (kind 'model'), or a baseline scored on the same folds."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    task: Mapped[str] = mapped_column(String(8))
    config: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]


class Stage(Base):
    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("experiment_id", "key", name="uq_stage_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200))
    task_name: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]]
    depends_on: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_host: Mapped[str | None] = mapped_column(String(200))
    task_id: Mapped[str | None] = mapped_column(String(64))
    pid: Mapped[int | None]
    cache_key: Mapped[str | None] = mapped_column(String(64), index=True)
    cached_from: Mapped[int | None]
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    # The worker process that holds a running stage: "host/boot/pid-namespace/pid/start-time", so that
    # a sweeper on the same host can tell at once that it is gone (relctl_core.liveness).
    worker_id: Mapped[str | None] = mapped_column(String(200))
    # Each attempt that lost its worker: {"host", "worker", "at", "step"}; max_attempts of them fail it.
    losses: Mapped[list[Any] | None] = mapped_column(JSON)
    # A stage that found an identical stage (same cache key) running elsewhere waits for it, queued.
    waits_for: Mapped[int | None]


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    task: Mapped[str] = mapped_column(String(8))
    rows: Mapped[int]
    summary: Mapped[dict[str, Any]]
    sources: Mapped[dict[str, Any]]
    artifact_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Artifact(Base):
    __tablename__ = "artifacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Metric(Base):
    """A metric of a run (per fold or CV aggregate, overall or per language) or of a stage (run_id NULL:
    a translate stage's chrF)."""

    __tablename__ = "metrics"
    __table_args__ = (
        # One run's metrics by name, fold and language: the values of the rows a leaderboard shows.
        Index("ix_metrics_run_name", "run_id", "name", "fold", "language"),
        # One experiment's metrics by name (the chrF of its translate stages); also serves its deletion.
        Index("ix_metrics_experiment_name", "experiment_id", "name"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(8))
    fold: Mapped[int | None]
    language: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)  # NULL where undefined (AUC of a one-class fold)
    std: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int | None]


# The leaderboard's ranking: every run's CV aggregate (fold NULL) of one metric, overall or per language,
# read from the index alone, best first within each language and task, so that ranking needs no sort.
# A third of the table's rows: the per-fold ones are left out.
Index(
    "ix_metrics_ranking",
    Metric.name,
    Metric.language,
    Metric.task,
    Metric.value.desc(),
    Metric.run_id,
    postgresql_where=Metric.fold.is_(None),
    sqlite_where=Metric.fold.is_(None),
)


class Translation(Base):
    """The translation cache, shared by every experiment: one row per (backend, model, source text)."""

    __tablename__ = "translations"
    __table_args__ = (UniqueConstraint("backend", "model", "source_hash", name="uq_translation"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    backend: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(300))
    source_hash: Mapped[str] = mapped_column(String(64))
    source_text: Mapped[str] = mapped_column(Text)
    source_language: Mapped[str | None] = mapped_column(String(16))
    target_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Event(Base):
    """The experiment's log: what each stage did, including training progress."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), index=True)
    stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id", ondelete="CASCADE"))
    ts: Mapped[dt.datetime] = mapped_column(default=utcnow)
    level: Mapped[str] = mapped_column(String(8), default="info")
    message: Mapped[str] = mapped_column(Text)


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


@lru_cache(maxsize=8)
def _sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


log = logging.getLogger("relctl.db")
T = TypeVar("T")

# Seconds to keep trying an unreachable run database (RELCTL_DB_RETRY_SECONDS, see settings.py).
_DEFAULT_RETRY_SECONDS = 600.0


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


def _backoff(attempt: int) -> float:
    return min(2.0, 0.2 * 2**attempt) * (0.5 + random.random() / 2)


@contextmanager
def session_scope(url: str, *, wait: float | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    It first waits, with backoff, for the database to take a connection (for up to
    RELCTL_DB_RETRY_SECONDS, or ``wait`` seconds): a run database that restarts makes workers and
    watchers pause rather than fail. An error inside the block is the caller's; `retrying` repeats
    whole transactions."""
    deadline = time.monotonic() + (retry_seconds() if wait is None else wait)
    attempt = 0
    while True:
        session = _sessionmaker(url)()
        try:
            session.connection()
            break
        except Exception as exc:
            session.close()
            if not is_unreachable(exc) or time.monotonic() > deadline:
                raise
            if attempt == 0:
                log.warning("run database unreachable (%s); retrying", str(exc).splitlines()[0])
            time.sleep(_backoff(attempt))
            attempt += 1
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def retrying(url: str, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a transaction of its own, again from the start when the connection drops
    midway (for up to RELCTL_DB_RETRY_SECONDS). ``work`` must be safe to repeat: a commit whose
    answer was lost may have happened."""

    def transaction() -> T:
        with session_scope(url) as session:
            return work(session)

    return retry_call(transaction)


def retry_call(work: Callable[[], T]) -> T:
    """Call ``work`` again, with backoff, while it fails because the run database is unreachable."""
    deadline = time.monotonic() + retry_seconds()
    attempt = 0
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_unreachable(exc) or time.monotonic() > deadline:
                raise
            time.sleep(_backoff(attempt))
            attempt += 1
