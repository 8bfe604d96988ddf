"""Orchestration: write an experiment's graph, run one stage (with its cache), and enqueue what is ready.

The run database is the source of truth; Celery only carries stage ids. Every step here is safe to
repeat, because a worker that dies hands its message back and the stage runs again.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from relctl_core.db import (
    ACTIVE,
    CANCELLED,
    DONE,
    FAILED,
    PENDING,
    QUEUED,
    RUNNING,
    Event,
    Experiment,
    Metric,
    Run,
    Stage,
    is_unreachable,
    retry_call,
    retrying,
    session_scope,
    utcnow,
)
from relctl_core.errors import InputError, RelctlError
from relctl_core.liveness import end_orphaned_training, holder_is_gone, host_name, host_of, process_identity
from relctl_core.pairs import refresh_pairs
from relctl_core.settings import Settings, load_settings
from relctl_core.stages import Plan, stable_hash

# A running stage whose heartbeat is older than this many heartbeat intervals has lost its worker:
# two beats missed in a row, and a whole interval of slack for a slow database. Silence counts from
# the last beat, which came at most one interval before the worker died, so another host's sweeper
# hands the stage on within 3 intervals and one sweep period of the death.
STALE_HEARTBEATS = 3


@dataclass
class StageContext:
    """What a stage's compute function gets: its config, its inputs' outputs and a folder of its own."""

    settings: Settings
    stage_id: int
    experiment_id: int
    run_id: int | None
    kind: str
    config: dict[str, Any]  # as planned (the routing key gpu left out): read it through stages.PAYLOADS[kind]
    deps: list[tuple[str, dict[str, Any], dict[str, Any]]]  # (kind, config, output) of each dependency
    work_dir: Path
    attempt: int = 1  # the claim this context holds: writes are fenced by it
    lost: threading.Event = field(default_factory=threading.Event)  # another worker took the stage over

    def input(self, kind: str, task: str | None = None) -> dict[str, Any]:
        """The output of the single dependency of this kind (of this task's data, when given)."""
        found = self.inputs(kind, task)
        if len(found) != 1:
            raise LookupError(f"stage {self.stage_id} has {len(found)} '{kind}' inputs, expected 1")
        return found[0]

    def inputs(self, kind: str, task: str | None = None) -> list[dict[str, Any]]:
        """The outputs of the dependencies of this kind; with task, only those of that task's data."""
        return [output for dep_kind, config, output in self.deps if dep_kind == kind and (task is None or config.get("task") == task)]

    def path(self, relative: str) -> Path:
        """An artifact path stored in an output, resolved against this host's artifact root."""
        return self.settings.artifact_root / relative

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.settings.artifact_root))

    def log(self, message: str, level: str = "info") -> None:
        """Add to the experiment's log; a log line is not worth stopping a stage for while the
        database is away."""
        try:
            log_event(self.settings, self.experiment_id, self.stage_id, message, level)
        except Exception as exc:  # noqa: BLE001
            if not is_unreachable(exc):
                raise

    def progress(self, progress: dict[str, Any]) -> None:
        try:
            report_progress(self.settings, self.stage_id, progress, attempt=self.attempt)
        except Exception as exc:  # noqa: BLE001 - the next report carries the news
            if not is_unreachable(exc):
                raise

    def cancelled(self) -> bool:
        try:
            with session_scope(self.settings.database_url) as session:
                return session.scalar(select(Stage.status).where(Stage.id == self.stage_id)) == CANCELLED
        except Exception as exc:  # noqa: BLE001 - unknown while the database is away: carry on
            if not is_unreachable(exc):
                raise
            return False

    def interruption(self) -> str | None:
        """Why the stage should stop now, if it should: "cancelled", "lost" (taken over by another
        worker) or "stopping" (this worker is shutting down and hands the stage back)."""
        if self.lost.is_set():
            return "lost"
        if self.cancelled():
            return "cancelled"
        if STOPPING.is_set():
            return "stopping"
        return None


Compute = Callable[[StageContext], dict[str, Any]]


def log_event(settings: Settings, experiment_id: int, stage_id: int | None, message: str, level: str = "info") -> None:
    with session_scope(settings.database_url) as session:
        session.add(Event(experiment_id=experiment_id, stage_id=stage_id, message=message, level=level))


def report_progress(settings: Settings, stage_id: int, progress: dict[str, Any], *, attempt: int | None = None) -> None:
    fence = [Stage.id == stage_id] + ([Stage.attempts == attempt, Stage.status == RUNNING] if attempt is not None else [])
    with session_scope(settings.database_url) as session:
        session.execute(update(Stage).where(*fence).values(progress=progress, heartbeat_at=utcnow()))


def write_experiment(session: Session, *, name: str, spec_path: str, spec_text: str, spec: dict[str, Any], plan: Plan) -> int:
    """Insert the experiment, its runs and its stages (all pending) in the caller's transaction."""
    experiment = Experiment(name=name, status=PENDING, spec_path=spec_path, spec_text=spec_text, spec=spec)
    session.add(experiment)
    session.flush()
    runs = []
    for planned in plan.runs:
        run = Run(experiment_id=experiment.id, name=planned.name, kind=planned.kind, task=planned.task, config=planned.config)
        session.add(run)
        runs.append(run)
    session.flush()
    ids: dict[str, int] = {}
    for key, planned in plan.stages.items():  # insertion order: dependencies come first
        stage = Stage(
            experiment_id=experiment.id,
            run_id=runs[planned.run].id if planned.run is not None else None,
            kind=planned.kind,
            key=key,
            label=planned.label,
            task_name=planned.task_name,
            queue=_queue_of(planned.task_name, planned.gpu),
            config={**planned.config, "gpu": planned.gpu} if planned.task_name.startswith("relctl.trainer.") else planned.config,
            depends_on=[ids[dep] for dep in planned.depends_on],
            status=PENDING,
        )
        session.add(stage)
        session.flush()
        ids[key] = stage.id
    return experiment.id


def _queue_of(task_name: str, gpu: str) -> str:
    from relctl_core.celery_app import route_for

    return route_for(task_name, {"gpu": gpu})


def advance(settings: Settings, experiment_id: int, send: Callable[[Stage], str] | None = None) -> list[int]:
    """Enqueue every pending stage whose dependencies are done; settle the experiment when nothing is left.

    Returns the ids of the stages enqueued. A stage moves pending -> queued in one conditional
    UPDATE, so two workers finishing at once never enqueue it twice.
    """
    send = send or send_stage
    enqueued = []
    with session_scope(settings.database_url) as session:
        experiment = session.get(Experiment, experiment_id)
        if experiment is None or experiment.status == CANCELLED:
            return []
        stages = session.scalars(select(Stage).where(Stage.experiment_id == experiment_id)).all()
        status = {stage.id: stage.status for stage in stages}
        # An ensemble's stage depends on the fold stages of runs in other experiments.
        foreign = {dep for stage in stages for dep in stage.depends_on} - status.keys()
        if foreign:
            status.update(session.execute(select(Stage.id, Stage.status).where(Stage.id.in_(foreign))).tuples().all())
        ready = [s for s in stages if s.status == PENDING and all(status[d] == DONE for d in s.depends_on)]
    for stage in ready:
        with session_scope(settings.database_url) as session:
            claimed = session.execute(
                update(Stage).where(Stage.id == stage.id, Stage.status == PENDING).values(status=QUEUED, queued_at=utcnow())
            ).rowcount
        if not claimed:
            continue
        try:
            task_id = send(stage)
        except Exception:
            with session_scope(settings.database_url) as session:
                session.execute(update(Stage).where(Stage.id == stage.id).values(status=PENDING, queued_at=None))
            raise
        with session_scope(settings.database_url) as session:
            session.execute(update(Stage).where(Stage.id == stage.id).values(task_id=task_id))
        enqueued.append(stage.id)
    settle(settings, experiment_id)
    return enqueued


def send_stage(stage: Stage) -> str:
    from relctl_core.celery_app import get_app

    gpu = stage.config.get("gpu", "cpu")
    options: dict[str, Any] = {}
    if not stage.task_name.startswith("relctl.trainer."):
        # A CPU stage that hangs fails clearly (prefork workers). A training's limit is its own
        # (train.time_limit), kept by the trainer, which can checkpoint before it stops.
        options["soft_time_limit"] = load_settings().stage_time_limit
    # No queue here: the routing table in celery_app decides, from the task name and the gpu keyword.
    result = get_app().send_task(stage.task_name, kwargs={"stage_id": stage.id, "gpu": gpu}, **options)
    return str(result.id)


def settle(settings: Settings, experiment_id: int) -> str:
    """Derive run and experiment status from their stages."""
    with session_scope(settings.database_url) as session:
        experiment = session.get(Experiment, experiment_id)
        assert experiment is not None
        stages = session.scalars(select(Stage).where(Stage.experiment_id == experiment_id)).all()
        for run in session.scalars(select(Run).where(Run.experiment_id == experiment_id)):
            run_stages = [s.status for s in stages if s.run_id == run.id]
            new = _combined_status(run_stages)
            if new != run.status:
                run.status = new
                run.finished_at = utcnow() if new in (DONE, FAILED, CANCELLED) else None
        if experiment.status == CANCELLED:
            return CANCELLED
        new = _combined_status([s.status for s in stages])
        if new != experiment.status:
            experiment.status = new
            experiment.finished_at = utcnow() if new in (DONE, FAILED) else None
            if new == FAILED:
                failed = [s for s in stages if s.status == FAILED]
                experiment.error = "; ".join(f"{s.label}: {(s.error or '').splitlines()[0] if s.error else ''}" for s in failed)
        return new


def _combined_status(statuses: list[str]) -> str:
    if not statuses or all(s == DONE for s in statuses):
        return DONE
    if any(s in (QUEUED, RUNNING) for s in statuses):
        return RUNNING
    if any(s == FAILED for s in statuses):
        return FAILED  # nothing in flight, and what is pending waits on a failure
    if all(s == CANCELLED for s in statuses if s != DONE):
        return CANCELLED
    return RUNNING if any(s == DONE for s in statuses) else PENDING


class HandedBack(RelctlError):
    """The worker is stopping (SIGTERM: systemd stop, a preempted host) and the stage saved what it had;
    it goes back to the queue for another worker to resume."""

    def __init__(self, message: str, *, step: int | None = None) -> None:
        self.step = step
        super().__init__(message)


class LeaseLost(RelctlError):
    """Another worker took the stage over (this one was silent too long): its result is not ours to write."""


class TimeLimitExceeded(RelctlError):
    """An attempt of a stage ran past its time limit."""


# Set when this process's worker is stopping: running stages checkpoint and hand their work back.
STOPPING = threading.Event()


def execute_stage(stage_id: int, compute: Compute, *, version: str, task_id: str | None = None, settings: Settings | None = None) -> str:
    """Run one stage: skip it when finished, serve it from the cache when an identical stage finished
    anywhere before, or compute it. Records the outcome and enqueues what became ready. Returns the
    stage's final status.

    A delivery of a stage that another worker holds (its holder is alive) does nothing: the same message
    can come back while the stage runs (Redis redelivers after the visibility timeout), and the sweepers
    (relctl_core.sweeper), not redeliveries, hand on a stage whose worker died. A delivery of a stage
    whose twin (same cache key) runs in another experiment leaves it queued, waiting for that twin's
    result instead of computing it a second time."""
    settings = settings or load_settings()
    begun = _begin(settings, stage_id, version=version, task_id=task_id)
    if isinstance(begun, _HeldElsewhere):
        log_event(settings, begun.experiment_id, stage_id, f"{begun.label}: a second delivery found it running on {begun.host} (heartbeat {begun.age:.0f} s ago); left to it", level="debug")
        return RUNNING
    if isinstance(begun, str):
        return begun
    if begun is not None:
        ctx = begun
        stop_heartbeat = _start_heartbeat(settings, ctx)
        try:
            output = json_safe(compute(ctx))
            stop_heartbeat()
            retrying(settings.database_url, lambda session: _record_result(session, ctx, output))
        except HandedBack as exc:
            stop_heartbeat()
            _hand_back(settings, ctx, exc)
        except LeaseLost as exc:
            stop_heartbeat()
            log_event(settings, ctx.experiment_id, stage_id, f"stage {stage_id}: stopped on {host_name()}: {exc}", level="warning")
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the stage, never lost
            stop_heartbeat()
            if isinstance(exc, SoftTimeLimitExceeded):
                exc = TimeLimitExceeded(f"ran past its time limit of {_duration(settings.stage_time_limit)} (RELCTL_STAGE_TIME_LIMIT)")
            _fail(settings, ctx, exc)
        finally:
            stop_heartbeat()
        experiment_id = ctx.experiment_id
        wake_waiters(settings, stage_id)
    else:
        with session_scope(settings.database_url) as session:
            experiment_id = session.scalar(select(Stage.experiment_id).where(Stage.id == stage_id))
    try:
        retry_call(lambda: advance(settings, experiment_id))
    except Exception as exc:  # noqa: BLE001 - the stage's own outcome is recorded; a sweeper sends the rest
        log_event(settings, experiment_id, stage_id, f"could not enqueue the stages that follow ({type(exc).__name__}: {exc}); a sweeper sends them", level="warning")
    with session_scope(settings.database_url) as session:
        return session.scalar(select(Stage.status).where(Stage.id == stage_id)) or "missing"


def _record_result(session: Session, ctx: StageContext, output: dict[str, Any]) -> None:
    """Mark the stage done with its output, if this attempt still holds it (not cancelled, not taken over)."""
    stage = session.get(Stage, ctx.stage_id)
    assert stage is not None
    if stage.status == DONE and stage.attempts == ctx.attempt:
        return  # a repeat of a commit whose answer was lost
    if stage.status != RUNNING or stage.attempts != ctx.attempt:
        if stage.status != CANCELLED:
            session.add(Event(experiment_id=ctx.experiment_id, stage_id=ctx.stage_id, level="warning", message=f"{stage.label}: result of attempt {ctx.attempt} on {host_name()} discarded: the stage is {stage.status} (attempt {stage.attempts})"))
        return
    _finish(session, stage, output, cache_key=stage.cache_key or "", cached_from=None)
    session.add(Event(experiment_id=ctx.experiment_id, stage_id=ctx.stage_id, message=f"{stage.label}: done"))


@dataclass(frozen=True)
class _HeldElsewhere:
    experiment_id: int
    label: str
    host: str
    age: float


def lost_holder(settings: Settings, stage: Stage, now: dt.datetime | None = None, *, heartbeats: bool = True) -> str | None:
    """Why a running stage's worker counts as gone, or None while it may be alive: the process is
    gone from this very host, or its heartbeat has been silent for STALE_HEARTBEATS intervals.
    With heartbeats=False only the first counts (a judge that was itself cut off from the database
    cannot tell a silent worker from one whose beats did not get through either)."""
    if stage.status != RUNNING:
        return None
    if holder_is_gone(stage.worker_id):
        return f"its worker process on {host_of(stage.worker_id)} is gone"
    if not heartbeats:
        return None
    now = now or utcnow()
    if stage.heartbeat_at is None:
        return "it has no heartbeat"
    silent = (now - _aware(stage.heartbeat_at)).total_seconds()
    if silent > settings.heartbeat_seconds * STALE_HEARTBEATS:
        return f"its worker on {stage.worker_host or host_of(stage.worker_id)} has been silent for {silent:.0f} s"
    return None


def reclaim(settings: Settings, session: Session, stage: Stage, reason: str) -> str | None:
    """Take a running stage away from a worker that is gone: back to queued, with the loss recorded, or
    failed once max_attempts attempts have lost their worker. One conditional UPDATE, so that of two
    sweepers (or a sweeper and a redelivery) only one acts. Returns the new status, or None when
    another got there first. The caller commits, then sends the stage's message when it is queued."""
    now = utcnow()
    host = stage.worker_host or host_of(stage.worker_id)
    losses = [*(stage.losses or []), {"host": host, "worker": stage.worker_id, "at": now.isoformat(), "step": (stage.progress or {}).get("step"), "why": reason}]
    failed = len(losses) >= settings.max_attempts
    values: dict[str, Any] = {"losses": losses, "worker_id": None, "heartbeat_at": None, "pid": None}
    if failed:
        hosts = ", ".join(str(loss["host"]) for loss in losses)
        values.update(
            status=FAILED,
            finished_at=now,
            error=f"lost its worker on {len(losses)} attempts (on {hosts}), the most RELCTL_MAX_ATTEMPTS allows; the last time {reason}",
        )
    else:
        values.update(status=QUEUED, queued_at=now, task_id=None)
    fence = [Stage.id == stage.id, Stage.status == RUNNING, Stage.attempts == stage.attempts]
    if holder_is_gone(stage.worker_id):
        fence.append(Stage.worker_id == stage.worker_id)
        end_orphaned_training(stage.pid)
    else:
        stale_before = now - dt.timedelta(seconds=settings.heartbeat_seconds * STALE_HEARTBEATS)
        fence.append(Stage.heartbeat_at.is_(None) | (Stage.heartbeat_at < stale_before))
    done = session.execute(update(Stage).where(*fence).values(**values).execution_options(synchronize_session=False)).rowcount
    if not done:
        return None
    attempt = f"attempt {stage.attempts} on {host}"
    message = (
        f"{stage.label}: failed: {values['error']}"
        if failed
        else f"{stage.label}: taken over: {reason} ({attempt}); queued again, {len(losses)} of {settings.max_attempts} attempts lost"
    )
    session.add(Event(experiment_id=stage.experiment_id, stage_id=stage.id, level="error" if failed else "warning", message=message))
    return FAILED if failed else QUEUED


def _begin(settings: Settings, stage_id: int, *, version: str, task_id: str | None) -> StageContext | _HeldElsewhere | str | None:
    """Decide what this delivery of a stage does. Returns the stage's status when there is nothing to do
    (finished, failed, cancelled, not ready, waiting for its twin, missing), a _HeldElsewhere while
    another worker holds it, None when the stage was served from the cache, or the context to compute it
    with (the stage is then claimed: running, held by this process)."""
    with session_scope(settings.database_url) as session:
        stage = session.get(Stage, stage_id)
        if stage is None:
            return "missing"
        if stage.status in (DONE, CANCELLED, FAILED):
            return stage.status  # a redelivered message for a settled stage does nothing
        if stage.status == RUNNING:
            reason = lost_holder(settings, stage)
            if reason is None:
                age = (utcnow() - _aware(stage.heartbeat_at)).total_seconds() if stage.heartbeat_at else 0.0
                return _HeldElsewhere(stage.experiment_id, stage.label, stage.worker_host or "another worker", age)
            outcome = reclaim(settings, session, stage, reason)
            session.commit()
            if outcome == FAILED:
                return FAILED
            return _begin(settings, stage_id, version=version, task_id=task_id)  # queued now: claim it here
        experiment_id, run_id, kind, config = stage.experiment_id, stage.run_id, stage.kind, dict(stage.config)
        deps = []
        for dep_id in stage.depends_on:
            dep = session.get(Stage, dep_id)
            assert dep is not None
            if dep.status != DONE:
                return stage.status  # not ready: advance() will send it again
            deps.append((dep.kind, dict(dep.config), dict(dep.output or {})))
        # The gpu key only routes the stage's message; the planned config is the stage's identity.
        config = {k: v for k, v in config.items() if k != "gpu"}
        cache_key = stage_cache_key(kind, config, [d[2].get("hash") for d in deps], version)
        # From here to the claim, one stage of this cache key at a time: two twins delivered at once
        # must not both find the other idle and both compute.
        _lock_cache_key(session, stage_id, cache_key)
        hit = session.scalars(
            select(Stage)
            .where(Stage.cache_key == cache_key, Stage.status == DONE, Stage.id != stage_id)
            .order_by(Stage.finished_at.desc())
            .limit(1)
        ).first()
        if hit is not None and _artifacts_exist(settings, hit.output):
            _finish(session, stage, dict(hit.output or {}), cache_key=cache_key, cached_from=hit.id)
            session.add(Event(experiment_id=experiment_id, stage_id=stage_id, message=f"{stage.label}: cached (stage {hit.id})"))
            return None
        twins = session.scalars(select(Stage).where(Stage.cache_key == cache_key, Stage.status == RUNNING, Stage.id != stage_id)).all()
        twin = next((t for t in twins if lost_holder(settings, t) is None), None)
        if twin is not None:
            session.execute(update(Stage).where(Stage.id == stage_id).values(status=QUEUED, waits_for=twin.id, cache_key=cache_key))
            session.add(Event(experiment_id=experiment_id, stage_id=stage_id, message=f"{stage.label}: waits for the identical stage {twin.id} (experiment {twin.experiment_id}) running on {twin.worker_host}"))
            return QUEUED
        # One conditional UPDATE claims the stage, so two deliveries never both take it.
        now = utcnow()
        claimed = session.execute(
            update(Stage)
            .where(Stage.id == stage_id, Stage.status == stage.status, Stage.attempts == stage.attempts)
            .values(
                status=RUNNING,
                attempts=stage.attempts + 1,
                worker_host=host_name(),
                worker_id=process_identity(),
                pid=os.getpid(),
                task_id=task_id or stage.task_id,
                started_at=now,
                heartbeat_at=now,
                cache_key=cache_key,
                error=None,
                waits_for=None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            session.rollback()
            return _begin(settings, stage_id, version=version, task_id=task_id)
        attempt = stage.attempts + 1
        resumed = f" after {len(stage.losses)} lost" if stage.losses else ""
        session.add(Event(experiment_id=experiment_id, stage_id=stage_id, message=f"{stage.label}: started on {host_name()} (attempt {attempt}{resumed})"))
        experiment = session.get(Experiment, experiment_id)
        if experiment is not None and experiment.status == PENDING:
            experiment.status = RUNNING
    work_dir = settings.artifact_root / kind / cache_key
    work_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(settings, stage_id, experiment_id, run_id, kind, config, deps, work_dir, attempt=attempt)


# Settings that say where and how long a stage runs, not what it computes: (section, key) of the
# stage's config, None for a top-level key. They stay out of the cache key, so that adding a time
# limit to a spec does not compute its finished stages again.
PLACEMENT_KEYS = ((None, "gpu"), ("train", "time_limit"))


def stage_cache_key(kind: str, config: dict[str, Any], input_hashes: list[Any], version: str) -> str:
    cache_config = dict(config)
    for section, key in PLACEMENT_KEYS:
        if section is None:
            cache_config.pop(key, None)
        elif isinstance(cache_config.get(section), dict):
            cache_config[section] = {k: v for k, v in cache_config[section].items() if k != key}
    return stable_hash({"kind": kind, "config": cache_config, "inputs": input_hashes, "version": version})


def _lock_cache_key(session: Session, stage_id: int, cache_key: str) -> None:
    """Serialise the claims of stages with one cache key until the transaction ends: PostgreSQL takes
    an advisory lock on the key; SQLite's first write takes the database's one writer lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(cache_key[:15], 16)})
    else:
        session.execute(update(Stage).where(Stage.id == stage_id).values(id=Stage.id))


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands datetimes back without their zone; every one stored here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _start_heartbeat(settings: Settings, ctx: StageContext) -> Callable[[], None]:
    """Touch the stage's heartbeat every settings.heartbeat_seconds until the returned stop() is called.

    The beat is fenced by the attempt: once another worker has taken the stage over (this one was
    silent too long, say behind a network cut), the beat finds nothing to touch and sets ctx.lost, and
    the stage stops instead of running beside its successor."""
    stopped = threading.Event()

    def beat() -> None:
        while not stopped.wait(settings.heartbeat_seconds):
            try:
                with session_scope(settings.database_url) as session:
                    touched = session.execute(
                        update(Stage)
                        .where(Stage.id == ctx.stage_id, Stage.status == RUNNING, Stage.attempts == ctx.attempt)
                        .values(heartbeat_at=utcnow())
                    ).rowcount
                    if not touched:
                        status = session.scalar(select(Stage.status).where(Stage.id == ctx.stage_id))
                        if status != CANCELLED:
                            ctx.lost.set()
                        return
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                continue

    thread = threading.Thread(target=beat, name=f"heartbeat-{ctx.stage_id}", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        if thread is not threading.current_thread():
            thread.join()

    return stop


def _fail(settings: Settings, ctx: StageContext, exc: Exception) -> None:
    error = str(exc) if isinstance(exc, RelctlError) else f"{type(exc).__name__}: {exc}"
    trace = traceback.format_exc()

    def record(session: Session) -> None:
        stage = session.get(Stage, ctx.stage_id)
        assert stage is not None
        if stage.status != RUNNING or stage.attempts != ctx.attempt:
            return  # cancelled, or another worker holds it now
        stage.status = FAILED
        stage.error = error
        stage.finished_at = utcnow()
        stage.worker_id = None
        session.add(Event(experiment_id=stage.experiment_id, stage_id=ctx.stage_id, level="error", message=f"{stage.label}: failed: {error}\n{trace}"))

    retrying(settings.database_url, record)


def _hand_back(settings: Settings, ctx: StageContext, exc: HandedBack) -> None:
    """Put a stage whose worker is stopping back in the queue, for another worker to resume."""

    def release(session: Session) -> Stage | None:
        stage = session.get(Stage, ctx.stage_id)
        assert stage is not None
        if stage.status != RUNNING or stage.attempts != ctx.attempt:
            return None
        stage.status = QUEUED
        stage.queued_at = utcnow()
        stage.worker_id = None
        stage.heartbeat_at = None
        stage.pid = None
        stage.task_id = None
        session.add(Event(experiment_id=stage.experiment_id, stage_id=stage.id, level="warning", message=f"{stage.label}: handed back by {host_name()}: {exc}"))
        session.flush()
        session.expunge(stage)
        return stage

    released = retrying(settings.database_url, release)
    if released is not None:
        resend(settings, released)


def resend(settings: Settings, stage: Stage, send: Callable[[Stage], str] | None = None) -> bool:
    """Send a queued stage's message again; False when the broker would not take it (the sweepers try
    again later: the stage stays queued without a message)."""
    send = send or send_stage
    try:
        task_id = send(stage)
    except Exception as exc:  # noqa: BLE001 - a dead broker leaves it to the next sweep
        log_event(settings, stage.experiment_id, stage.id, f"{stage.label}: could not be sent ({type(exc).__name__}: {exc}); a sweeper sends it again", level="warning")
        return False
    with session_scope(settings.database_url) as session:
        session.execute(update(Stage).where(Stage.id == stage.id, Stage.status == QUEUED).values(task_id=task_id))
    return True


def wake_waiters(settings: Settings, stage_id: int, send: Callable[[Stage], str] | None = None) -> list[int]:
    """Send again the stages that waited for this one (their twin): it has an outcome now, so they
    are served from its result, or compute it themselves if it failed."""
    with session_scope(settings.database_url) as session:
        waiting = session.scalars(select(Stage).where(Stage.waits_for == stage_id, Stage.status == QUEUED)).all()
        woken = []
        for stage in waiting:
            if session.execute(update(Stage).where(Stage.id == stage.id, Stage.waits_for == stage_id, Stage.status == QUEUED).values(waits_for=None, queued_at=utcnow())).rowcount:
                woken.append(stage)
        for stage in woken:
            session.expunge(stage)
    for stage in woken:
        resend(settings, stage, send)
    return [stage.id for stage in woken]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def json_safe(value: Any) -> Any:
    """NaN and infinities become None: PostgreSQL's JSON (and strict JSON) has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _artifacts_exist(settings: Settings, output: dict[str, Any] | None) -> bool:
    paths = (output or {}).get("artifacts", {})
    return all((settings.artifact_root / p).exists() for p in paths.values())


def _finish(session: Session, stage: Stage, output: dict[str, Any], *, cache_key: str, cached_from: int | None) -> None:
    """Mark the stage done and record its metrics as rows (and the F1avg pairs they make), in one transaction."""
    stage.status = DONE
    stage.output = output
    stage.cache_key = cache_key
    stage.cached_from = cached_from
    stage.finished_at = utcnow()
    stage.error = None
    session.execute(delete(Metric).where(Metric.stage_id == stage.id))
    task = stage.config.get("task", "")
    for record in output.get("metrics", []):
        session.add(
            Metric(
                experiment_id=stage.experiment_id,
                run_id=stage.run_id,
                stage_id=stage.id,
                task=task,
                fold=record.get("fold"),
                language=record.get("language"),
                name=record["name"],
                value=_finite(record["value"]),
                std=_finite(record.get("std")),
                n=record.get("n"),
                low=_finite(record.get("low")),
                high=_finite(record.get("high")),
            )
        )
    # A run's CV means of an F1 metric are what its experiment's F1avg pairs average: the pairs follow
    # any change of a run's metrics (written, rewritten or, by a stage done again, gone).
    if stage.run_id is not None:
        session.flush()
        refresh_pairs(session.connection(), stage.experiment_id)


def _finite(value: Any) -> float | None:
    return None if value is None else json_safe(float(value))


def cancel(settings: Settings, experiment_id: int) -> list[int]:
    """Drop queued stages and mark running ones cancelled; their workers see it and kill the training's
    whole process group. Returns the cancelled stage ids."""
    from relctl_core.celery_app import get_app

    with session_scope(settings.database_url) as session:
        experiment = session.get(Experiment, experiment_id)
        if experiment is None:
            raise InputError(f"no experiment {experiment_id}")
        stages = session.scalars(select(Stage).where(Stage.experiment_id == experiment_id, Stage.status.in_(ACTIVE))).all()
        task_ids = [s.task_id for s in stages if s.status == QUEUED and s.task_id]
        for stage in stages:
            stage.status = CANCELLED
            stage.finished_at = utcnow()
        experiment.status = CANCELLED
        experiment.finished_at = utcnow()
        session.add(Event(experiment_id=experiment_id, message=f"cancelled ({len(stages)} stages)"))
        cancelled = [s.id for s in stages]
    for task_id in task_ids:
        get_app().control.revoke(task_id)
    settle(settings, experiment_id)
    return cancelled


def retry(settings: Settings, experiment_id: int) -> list[int]:
    """Put failed (and cancelled) stages back to pending and enqueue what is ready; done stages stay done."""
    with session_scope(settings.database_url) as session:
        experiment = session.get(Experiment, experiment_id)
        if experiment is None:
            raise InputError(f"no experiment {experiment_id}")
        stages = session.scalars(select(Stage).where(Stage.experiment_id == experiment_id, Stage.status.in_((FAILED, CANCELLED)))).all()
        for stage in stages:
            stage.status = PENDING
            stage.error = None
        experiment.status = RUNNING if stages else experiment.status
        experiment.error = None
        experiment.finished_at = None
        session.add(Event(experiment_id=experiment_id, message=f"retry: {len(stages)} stages"))
        again = [s.id for s in stages]
    advance(settings, experiment_id)
    return again


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, value: Any) -> None:
    """Write atomically: a crash never leaves a half-written artifact behind."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)

