"""The reads the pages make of the run database, in SQLAlchemy Core: filtered and paged in SQL, so that
a page reads as much at ten thousand experiments as at ten."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from relctl_core.tables import (
    ACTIVE,
    CANCELLED,
    DONE,
    FAILED,
    PENDING,
    QUEUED,
    RUNNING,
    events,
    experiments,
    metrics,
    runs,
    stages,
)
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

PAGE_SIZE = 50
STATES = (PENDING, QUEUED, RUNNING, DONE, FAILED, CANCELLED)


@dataclass(frozen=True)
class ExperimentPage:
    """One page of the experiments list: its rows, newest first, and how many matched the filters."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def experiment_page(connection: Connection, *, name: str | None, status: str | None, page: int, page_size: int = PAGE_SIZE) -> ExperimentPage:
    """The experiments whose name holds ``name`` (any case) and whose status is ``status``, newest first,
    ``page_size`` a page (pages count from 1), each with its run and stage counts."""
    e = experiments.c
    conditions = []
    if name:
        conditions.append(e.name.ilike(_like_pattern(name), escape="\\"))
    if status:
        conditions.append(e.status == status)
    total = connection.scalar(select(func.count()).select_from(experiments).where(*conditions)) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    # Counted for the rows shown only, each by its experiment_id index.
    run_count = select(func.count(runs.c.id)).where(runs.c.experiment_id == e.id).correlate(experiments).scalar_subquery()
    stage_count = select(func.count(stages.c.id)).where(stages.c.experiment_id == e.id).correlate(experiments).scalar_subquery()
    stages_done = (
        select(func.count(stages.c.id)).where(stages.c.experiment_id == e.id, stages.c.status == DONE).correlate(experiments).scalar_subquery()
    )
    query = (
        select(e.id, e.name, e.status, e.created_at, e.finished_at, run_count.label("runs"), stage_count.label("stages"), stages_done.label("done"))
        .where(*conditions)
        .order_by(e.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    rows = [dict(r) for r in connection.execute(query).mappings()]
    return ExperimentPage(rows=rows, total=total, page=page, pages=pages)


def scored_languages(connection: Connection, metric: str) -> list[str]:
    """The languages runs were scored in on ``metric``, each found by one step along the ranking index
    past the one before (a board of every experiment holds hundreds of thousands of its rows)."""
    m = metrics.c
    found: list[str] = []
    while True:
        query = select(func.min(m.language)).where(m.name == metric, m.fold.is_(None), m.language.is_not(None), m.run_id.is_not(None))
        if found:
            query = query.where(m.language > found[-1])
        language = connection.scalar(query)
        if language is None:
            return found
        found.append(language)


def experiment_of(connection: Connection, experiment_id: int) -> dict[str, Any] | None:
    e = experiments.c
    found = connection.execute(
        select(e.id, e.name, e.status, e.spec_path, e.created_at, e.finished_at, e.error).where(e.id == experiment_id)
    ).mappings().first()
    return None if found is None else dict(found)


def stages_of(connection: Connection, experiment_id: int, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """An experiment's stages in order, each with what its progress says in words (progress_of)."""
    s = stages.c
    query = select(
        s.id, s.run_id, s.kind, s.label, s.queue, s.status, s.attempts, s.worker_host, s.cached_from, s.progress, s.error,
        s.started_at, s.finished_at, s.heartbeat_at, s.losses, s.waits_for,
    ).where(s.experiment_id == experiment_id).order_by(s.id)  # fmt: skip
    found = []
    for row in connection.execute(query).mappings():
        stage = dict(row)
        stage["progress_view"] = progress_of(stage, now=now) if stage["status"] == RUNNING else None
        stage["seconds"] = _seconds(stage["started_at"], stage["finished_at"])
        stage["note"] = stage_note(stage)
        found.append(stage)
    return found


def runs_of(connection: Connection, experiment_id: int) -> list[dict[str, Any]]:
    r = runs.c
    query = select(r.id, r.name, r.kind, r.task, r.status).where(r.experiment_id == experiment_id).order_by(r.id)
    return [dict(row) for row in connection.execute(query).mappings()]


def stage_of(connection: Connection, experiment_id: int, stage_id: int) -> dict[str, Any] | None:
    s = stages.c
    query = select(s.id, s.label, s.kind, s.status, s.error).where(s.id == stage_id, s.experiment_id == experiment_id)
    found = connection.execute(query).mappings().first()
    return None if found is None else dict(found)


def stage_events(connection: Connection, stage_id: int, *, limit: int = 5000) -> list[dict[str, Any]]:
    """A stage's log lines, oldest first (the last ``limit`` of them)."""
    v = events.c
    newest = select(v.id, v.ts, v.level, v.message).where(v.stage_id == stage_id).order_by(v.id.desc()).limit(limit).subquery()
    return [dict(row) for row in connection.execute(select(newest).order_by(newest.c.id)).mappings()]


def report_key(connection: Connection, experiment_id: int) -> str:
    """What a built report of the experiment depends on: its status and its latest stage end. A stage
    that ends, or a retry that ends one again, makes a new key."""
    latest = connection.scalar(select(func.max(stages.c.finished_at)).where(stages.c.experiment_id == experiment_id))
    status = connection.scalar(select(experiments.c.status).where(experiments.c.id == experiment_id))
    stamp = _aware(latest).strftime("%Y%m%dT%H%M%S%fZ") if latest is not None else "none"
    return f"{experiment_id}-{status}-{stamp}"


def recently_finished(connection: Connection, count: int) -> list[int]:
    """The ``count`` experiments that finished last (done), newest first."""
    query = select(experiments.c.id).where(experiments.c.status == DONE).order_by(experiments.c.finished_at.desc(), experiments.c.id.desc())
    return list(connection.scalars(query.limit(count)))


def is_active(status: str) -> bool:
    return status in ACTIVE


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back without their zone; relctl writes them all in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (_aware(end) - _aware(start)).total_seconds()


def progress_of(stage: dict[str, Any], *, now: dt.datetime | None = None) -> dict[str, Any]:
    """A running stage's last progress report as the page shows it: a training's epoch and step out of
    its total, loss, and ETA; a translation's done/total and rate. ETA from the pace so far (the
    translator reports its rate; a training's pace is its steps since it started)."""
    p = stage.get("progress") or {}
    view: dict[str, Any] = {"text": "", "fraction": None, "eta_seconds": None}
    if "total_steps" in p and p["total_steps"]:
        step, total = int(p.get("step") or 0), int(p["total_steps"])
        loss = p.get("loss")
        view["text"] = f"epoch {p.get('epoch', 0)} step {step}/{total}" + (f" loss {loss:.4f}" if isinstance(loss, float) else "")
        view["fraction"] = min(1.0, step / total)
        started, reported = stage.get("started_at"), stage.get("heartbeat_at")
        resumed = int(p.get("resumed_from_step") or 0)
        if started is not None and reported is not None and step > resumed:
            elapsed = (_aware(reported) - _aware(started)).total_seconds()
            if elapsed > 0:
                view["eta_seconds"] = (total - step) * elapsed / (step - resumed)
    elif "total" in p and p["total"]:
        done, total, rate = int(p.get("done") or 0), int(p["total"]), float(p.get("rate") or 0)
        view["text"] = f"{done}/{total} {p.get('unit', '')} ({rate:g}/s)".replace("  ", " ")
        view["fraction"] = min(1.0, done / total)
        if rate > 0:
            view["eta_seconds"] = (total - done) / rate
    if view["eta_seconds"] is not None:
        view["eta"] = duration_text(view["eta_seconds"])
    return view


def duration_text(seconds: float) -> str:
    """1h 02m, 3m 05s, 12s."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def stage_note(stage: dict[str, Any]) -> str:
    """What a stage's status alone does not say: taken over from a lost worker, waiting for its twin
    in another experiment, or cached."""
    if stage["waits_for"] is not None and stage["status"] == QUEUED:
        return f"waits for stage {stage['waits_for']}"
    if stage["status"] == DONE and stage["cached_from"] is not None:
        return f"cached (from stage {stage['cached_from']})"
    losses = stage["losses"] or []
    if not losses or stage["status"] == FAILED:
        return ""
    last = losses[-1]
    at = f" at step {last['step']}" if last.get("step") else ""
    verb = "taken over" if stage["status"] in (QUEUED, RUNNING) else "recovered"
    return f"{verb}: worker on {last['host']} lost{at} ({len(losses)} lost)"
