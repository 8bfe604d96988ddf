"""The run database's tables, in SQLAlchemy Core: the one description of the schema.

The ORM classes of db.py are mapped onto these tables, and commands that only read (the leaderboard,
`relctl list`) query them directly, so that they never import the ORM: on a small host that import
and the mapping of the classes cost a read-only command more than its queries.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from relctl_core.states import ACTIVE, CANCELLED, DONE, FAILED, PENDING, QUEUED, RUNNING

__all__ = ["ACTIVE", "CANCELLED", "DONE", "FAILED", "PENDING", "QUEUED", "RUNNING"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _when(name: str, *, nullable: bool = True) -> Column[dt.datetime]:
    return Column(name, DateTime(timezone=True), nullable=nullable, **({} if nullable else {"default": utcnow}))


def _cascade(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="CASCADE")


metadata = MetaData()

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, index=True),
    Column("status", String(16), nullable=False, default=PENDING),
    Column("spec_path", Text, nullable=False),
    Column("spec_text", Text, nullable=False),
    Column("spec", JSON, nullable=False),
    _when("created_at", nullable=False),
    _when("finished_at"),
    Column("error", Text),
)

# One combination of the sweep (kind 'model'), or a baseline scored on the same folds.
runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("experiment_id", Integer, _cascade("experiments.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("task", String(8), nullable=False),
    Column("config", JSON, nullable=False),
    Column("status", String(16), nullable=False, default=PENDING),
    _when("created_at", nullable=False),
    _when("finished_at"),
)

stages = Table(
    "stages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("experiment_id", Integer, _cascade("experiments.id"), nullable=False, index=True),
    Column("run_id", Integer, _cascade("runs.id"), index=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(200), nullable=False),
    Column("label", String(200), nullable=False),
    Column("task_name", String(100), nullable=False),
    Column("queue", String(64), nullable=False),
    Column("config", JSON, nullable=False),
    Column("depends_on", JSON, nullable=False),
    Column("status", String(16), nullable=False, default=PENDING, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker_host", String(200)),
    Column("task_id", String(64)),
    Column("pid", Integer),
    Column("cache_key", String(64), index=True),
    Column("cached_from", Integer),
    Column("output", JSON),
    Column("progress", JSON),
    Column("error", Text),
    _when("queued_at"),
    _when("started_at"),
    _when("finished_at"),
    _when("heartbeat_at"),
    # The worker process that holds a running stage: "host/boot/pid-namespace/pid/start-time", so that
    # a sweeper on the same host can tell at once that it is gone (relctl_core.liveness).
    Column("worker_id", String(200)),
    # Each attempt that lost its worker: {"host", "worker", "at", "step"}; max_attempts of them fail it.
    Column("losses", JSON),
    # A stage that found an identical stage (same cache key) running elsewhere waits for it, queued.
    Column("waits_for", Integer),
    UniqueConstraint("experiment_id", "key", name="uq_stage_key"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("content_hash", String(64), nullable=False, unique=True),
    Column("task", String(8), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("sources", JSON, nullable=False),
    Column("artifact_path", Text, nullable=False),
    _when("created_at", nullable=False),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("stage_id", Integer, _cascade("stages.id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("path", Text, nullable=False),
    Column("content_hash", String(64)),
    Column("bytes", Integer),
    _when("created_at", nullable=False),
)

# A metric of a run (per fold or CV aggregate, overall or per language) or of a stage (run_id NULL: a
# translate stage's chrF).
metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("experiment_id", Integer, _cascade("experiments.id"), nullable=False),
    Column("run_id", Integer, _cascade("runs.id")),
    Column("stage_id", Integer, _cascade("stages.id"), nullable=False, index=True),
    Column("task", String(8), nullable=False),
    Column("fold", Integer),
    Column("language", String(16)),
    Column("name", String(64), nullable=False),
    Column("value", Float),  # NULL where undefined (AUC of a one-class fold)
    Column("std", Float),
    Column("n", Integer),
    # The 95 % interval of a CV aggregate's mean, resampled by query (relctl_evaluator.stats); NULL where
    # none was computed (per-fold rows, metrics that are not resampled, runs scored before 0.1.6).
    Column("low", Float),
    Column("high", Float),
    # One run's metrics by name, fold and language: the values of the rows a leaderboard shows.
    Index("ix_metrics_run_name", "run_id", "name", "fold", "language"),
    # One experiment's metrics by name (the chrF of its translate stages); also serves its deletion.
    Index("ix_metrics_experiment_name", "experiment_id", "name"),
)

# The leaderboard's ranking: every run's CV aggregate (fold NULL) of one metric, overall or per language,
# read from the index alone, best first within each language and task, so that ranking needs no sort.
# A third of the table's rows: the per-fold ones are left out.
Index(
    "ix_metrics_ranking",
    metrics.c.name,
    metrics.c.language,
    metrics.c.task,
    metrics.c.value.desc(),
    metrics.c.run_id,
    postgresql_where=metrics.c.fold.is_(None),
    sqlite_where=metrics.c.fold.is_(None),
)

# F1avg = 0.5 F1(QC) + 0.5 F1(QI) of each pair of an experiment's runs that differ only in their task
# (a model for both tasks pairs with itself), per F1 metric. Written with the metrics it averages
# (relctl_core.pairs), so that the overall board reads its top off an index rather than pairing every
# run of every experiment at each look. A pair is shown while both its runs are done.
pairs = Table(
    "pairs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("experiment_id", Integer, _cascade("experiments.id"), nullable=False, index=True),
    Column("metric", String(64), nullable=False),
    Column("qc_run_id", Integer, _cascade("runs.id"), nullable=False),
    Column("qi_run_id", Integer, _cascade("runs.id"), nullable=False),
    Column("both", Boolean, nullable=False),  # one model for both tasks: qc_run_id == qi_run_id
    Column("value", Float, nullable=False),
    Column("qc", Float, nullable=False),  # breaks ties: the better QC first
)
# The overall board's F1avg: a metric's pairs best first, as the board orders them.
Index("ix_pairs_ranking", pairs.c.metric, pairs.c.value.desc(), pairs.c.qc.desc(), pairs.c.qc_run_id)

# The translation cache, shared by every experiment: one row per (backend, model, source text).
translations = Table(
    "translations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("backend", String(32), nullable=False),
    Column("model", String(300), nullable=False),
    Column("source_hash", String(64), nullable=False),
    Column("source_text", Text, nullable=False),
    Column("source_language", String(16)),
    Column("target_text", Text, nullable=False),
    _when("created_at", nullable=False),
    UniqueConstraint("backend", "model", "source_hash", name="uq_translation"),
)

# The experiment's log: what each stage did, including training progress.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("experiment_id", Integer, _cascade("experiments.id"), nullable=False, index=True),
    Column("stage_id", Integer, _cascade("stages.id")),
    _when("ts", nullable=False),
    Column("level", String(8), nullable=False, default="info"),
    Column("message", Text, nullable=False),
)
