"""The run database as ORM classes (experiments, runs, stages, datasets, artifacts, metrics,
translations and events), mapped onto the Core tables of tables.py, and sessions over it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy.orm import DeclarativeBase, Mapped, Session, sessionmaker

from relctl_core import tables
from relctl_core.engine import (
    forget_inherited_connections,
    get_engine,
    is_unreachable,
    retry_call,
    retry_seconds,
    wait_for,
)
from relctl_core.tables import ACTIVE, CANCELLED, DONE, FAILED, PENDING, QUEUED, RUNNING, utcnow

__all__ = [
    "ACTIVE", "CANCELLED", "DONE", "FAILED", "PENDING", "QUEUED", "RUNNING", "Artifact", "Base", "Dataset",
    "Event", "Experiment", "Metric", "Run", "Stage", "Translation", "forget_inherited_connections",
    "get_engine", "is_unreachable", "retry_call", "retry_seconds", "retrying", "session_scope", "utcnow",
]  # fmt: skip

T = TypeVar("T")


class Base(DeclarativeBase):
    metadata = tables.metadata


class Experiment(Base):
    __table__ = tables.experiments
    id: Mapped[int]
    name: Mapped[str]
    status: Mapped[str]
    spec_path: Mapped[str]
    spec_text: Mapped[str]
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    error: Mapped[str | None]


class Run(Base):
    """One combination of the sweep (kind 'model'), or a baseline scored on the same folds."""

    __table__ = tables.runs
    id: Mapped[int]
    experiment_id: Mapped[int]
    name: Mapped[str]
    kind: Mapped[str]
    task: Mapped[str]
    config: Mapped[dict[str, Any]]
    status: Mapped[str]
    created_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]


class Stage(Base):
    __table__ = tables.stages
    id: Mapped[int]
    experiment_id: Mapped[int]
    run_id: Mapped[int | None]
    kind: Mapped[str]
    key: Mapped[str]
    label: Mapped[str]
    task_name: Mapped[str]
    queue: Mapped[str]
    config: Mapped[dict[str, Any]]
    depends_on: Mapped[list[Any]]
    status: Mapped[str]
    attempts: Mapped[int]
    worker_host: Mapped[str | None]
    task_id: Mapped[str | None]
    pid: Mapped[int | None]
    cache_key: Mapped[str | None]
    cached_from: Mapped[int | None]
    output: Mapped[dict[str, Any] | None]
    progress: Mapped[dict[str, Any] | None]
    error: Mapped[str | None]
    queued_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    worker_id: Mapped[str | None]
    losses: Mapped[list[Any] | None]
    waits_for: Mapped[int | None]


class Dataset(Base):
    __table__ = tables.datasets
    id: Mapped[int]
    content_hash: Mapped[str]
    task: Mapped[str]
    rows: Mapped[int]
    summary: Mapped[dict[str, Any]]
    sources: Mapped[dict[str, Any]]
    artifact_path: Mapped[str]
    created_at: Mapped[dt.datetime]


class Artifact(Base):
    __table__ = tables.artifacts
    id: Mapped[int]
    stage_id: Mapped[int]
    kind: Mapped[str]
    path: Mapped[str]
    content_hash: Mapped[str | None]
    bytes: Mapped[int | None]
    created_at: Mapped[dt.datetime]


class Metric(Base):
    """A metric of a run (per fold or CV aggregate, overall or per language) or of a stage (run_id NULL:
    a translate stage's chrF)."""

    __table__ = tables.metrics
    id: Mapped[int]
    experiment_id: Mapped[int]
    run_id: Mapped[int | None]
    stage_id: Mapped[int]
    task: Mapped[str]
    fold: Mapped[int | None]
    language: Mapped[str | None]
    name: Mapped[str]
    value: Mapped[float | None]
    std: Mapped[float | None]
    n: Mapped[int | None]
    low: Mapped[float | None]
    high: Mapped[float | None]


class Translation(Base):
    """The translation cache, shared by every experiment: one row per (backend, model, source text)."""

    __table__ = tables.translations
    id: Mapped[int]
    backend: Mapped[str]
    model: Mapped[str]
    source_hash: Mapped[str]
    source_text: Mapped[str]
    source_language: Mapped[str | None]
    target_text: Mapped[str]
    created_at: Mapped[dt.datetime]


class Event(Base):
    """The experiment's log: what each stage did, including training progress."""

    __table__ = tables.events
    id: Mapped[int]
    experiment_id: Mapped[int]
    stage_id: Mapped[int | None]
    ts: Mapped[dt.datetime]
    level: Mapped[str]
    message: Mapped[str]


def _connected_session(url: str) -> Session:
    session = _sessionmaker(url)()
    try:
        session.connection()
    except BaseException:
        session.close()
        raise
    return session


@lru_cache(maxsize=8)
def _sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str, *, wait: float | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    It first waits, with backoff, for the database to take a connection (for up to
    RELCTL_DB_RETRY_SECONDS, or ``wait`` seconds): a run database that restarts makes workers and
    watchers pause rather than fail. An error inside the block is the caller's; `retrying` repeats
    whole transactions."""
    session = wait_for(lambda: _connected_session(url), wait)
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
