"""Orchestration: write an experiment's graph, run one stage (with its cache), and enqueue what is ready.

The run database is the source of truth; Celery only carries stage ids. Every step here is safe to
repeat, because a worker that dies hands its message back and the stage runs again.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, true, update
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
    session_scope,
    utcnow,
)
from relctl_core.errors import InputError, RelctlError
from relctl_core.settings import Settings, load_settings
from relctl_core.stages import Plan, stable_hash

# A running stage whose heartbeat is older than this many heartbeat intervals has lost its worker.
STALE_HEARTBEATS = 4


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
        log_event(self.settings, self.experiment_id, self.stage_id, message, level)

    def progress(self, progress: dict[str, Any]) -> None:
        report_progress(self.settings, self.stage_id, progress)

    def cancelled(self) -> bool:
        with session_scope(self.settings.database_url) as session:
            return session.scalar(select(Stage.status).where(Stage.id == self.stage_id)) == CANCELLED


Compute = Callable[[StageContext], dict[str, Any]]


def log_event(settings: Settings, experiment_id: int, stage_id: int | None, message: str, level: str = "info") -> None:
    with session_scope(settings.database_url) as session:
        session.add(Event(experiment_id=experiment_id, stage_id=stage_id, message=message, level=level))


def report_progress(settings: Settings, stage_id: int, progress: dict[str, Any]) -> None:
    with session_scope(settings.database_url) as session:
        session.execute(update(Stage).where(Stage.id == stage_id).values(progress=progress, heartbeat_at=utcnow()))


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
    # No queue here: the routing table in celery_app decides, from the task name and the gpu keyword.
    result = get_app().send_task(stage.task_name, kwargs={"stage_id": stage.id, "gpu": gpu})
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


def execute_stage(stage_id: int, compute: Compute, *, version: str, task_id: str | None = None, settings: Settings | None = None) -> str:
    """Run one stage: skip it when finished, serve it from the cache when an identical stage finished
    anywhere before, or compute it. Records the outcome and enqueues what became ready. Returns the
    stage's final status.

    A stage that another worker is running (its heartbeat is fresh) is waited for rather than run
    twice: the same message can come back while it runs (Redis redelivers after the visibility
    timeout). When that worker dies, its heartbeat goes stale and this delivery takes the stage over;
    a training then resumes from its last checkpoint."""
    settings = settings or load_settings()
    waiting_logged = False
    while True:
        begun = _begin(settings, stage_id, version=version, task_id=task_id)
        if not isinstance(begun, _HeldElsewhere):
            break
        if not waiting_logged:
            waiting_logged = True
            log_event(settings, begun.experiment_id, stage_id, f"{begun.label}: already running on {begun.host} (heartbeat {begun.age:.0f} s ago); waiting for it to finish or go silent")
        time.sleep(settings.heartbeat_seconds)
    if isinstance(begun, str):
        return begun
    if begun is not None:
        ctx = begun
        stop_heartbeat = _start_heartbeat(settings, stage_id)
        try:
            output = json_safe(compute(ctx))
            with session_scope(settings.database_url) as session:
                stage = session.get(Stage, stage_id)
                assert stage is not None
                if stage.status != CANCELLED:
                    _finish(session, stage, output, cache_key=stage.cache_key or "", cached_from=None)
                    session.add(Event(experiment_id=ctx.experiment_id, stage_id=stage_id, message=f"{stage.label}: done"))
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the stage, never lost
            _fail(settings, stage_id, exc)
        finally:
            stop_heartbeat()
        experiment_id = ctx.experiment_id
    else:
        with session_scope(settings.database_url) as session:
            experiment_id = session.scalar(select(Stage.experiment_id).where(Stage.id == stage_id))
    advance(settings, experiment_id)
    with session_scope(settings.database_url) as session:
        return session.scalar(select(Stage.status).where(Stage.id == stage_id)) or "missing"


@dataclass(frozen=True)
class _HeldElsewhere:
    experiment_id: int
    label: str
    host: str
    age: float


def _begin(settings: Settings, stage_id: int, *, version: str, task_id: str | None) -> StageContext | _HeldElsewhere | str | None:
    """Decide what this delivery of a stage does. Returns the stage's status when there is nothing to do
    (finished, cancelled, not ready, missing), a _HeldElsewhere while another worker's heartbeat is
    fresh, None when the stage was served from the cache, or the context to compute it with (the stage
    is then claimed: running, with this worker's heartbeat)."""
    with session_scope(settings.database_url) as session:
        stage = session.get(Stage, stage_id)
        if stage is None:
            return "missing"
        if stage.status in (DONE, CANCELLED):
            return stage.status  # a redelivered message for a finished stage does nothing
        experiment_id, run_id, kind, config = stage.experiment_id, stage.run_id, stage.kind, dict(stage.config)
        stale_before = utcnow() - dt.timedelta(seconds=settings.heartbeat_seconds * STALE_HEARTBEATS)
        if stage.status == RUNNING and stage.heartbeat_at is not None and _aware(stage.heartbeat_at) >= stale_before:
            age = (utcnow() - _aware(stage.heartbeat_at)).total_seconds()
            return _HeldElsewhere(experiment_id, stage.label, stage.worker_host or "another worker", age)
        deps = []
        for dep_id in stage.depends_on:
            dep = session.get(Stage, dep_id)
            assert dep is not None
            if dep.status != DONE:
                return stage.status  # not ready: advance() will send it again
            deps.append((dep.kind, dict(dep.config), dict(dep.output or {})))
        # The gpu key only routes the stage's message; the planned config is the stage's identity.
        config = {k: v for k, v in config.items() if k != "gpu"}
        cache_key = stable_hash({"kind": kind, "config": config, "inputs": [d[2].get("hash") for d in deps], "version": version})
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
        # One conditional UPDATE claims the stage, so two deliveries that both saw a silent holder
        # never both take it over.
        now = utcnow()
        claimed = session.execute(
            update(Stage)
            .where(
                Stage.id == stage_id,
                Stage.status == stage.status,
                (Stage.heartbeat_at.is_(None) | (Stage.heartbeat_at < stale_before)) if stage.status == RUNNING else true(),
            )
            .values(
                status=RUNNING,
                attempts=Stage.attempts + 1,
                worker_host=socket.gethostname(),
                pid=os.getpid(),
                task_id=task_id or stage.task_id,
                started_at=now,
                heartbeat_at=now,
                cache_key=cache_key,
                error=None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            session.rollback()
            return _begin(settings, stage_id, version=version, task_id=task_id)
        taken_over = " after its previous worker went silent" if stage.status == RUNNING else ""
        session.add(Event(experiment_id=experiment_id, stage_id=stage_id, message=f"{stage.label}: started on {socket.gethostname()} (attempt {stage.attempts + 1}){taken_over}"))
        experiment = session.get(Experiment, experiment_id)
        if experiment is not None and experiment.status == PENDING:
            experiment.status = RUNNING
    work_dir = settings.artifact_root / kind / cache_key
    work_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(settings, stage_id, experiment_id, run_id, kind, config, deps, work_dir)


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands datetimes back without their zone; every one stored here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _start_heartbeat(settings: Settings, stage_id: int) -> Callable[[], None]:
    """Touch the stage's heartbeat every settings.heartbeat_seconds until the returned stop() is called."""
    stopped = threading.Event()

    def beat() -> None:
        while not stopped.wait(settings.heartbeat_seconds):
            try:
                with session_scope(settings.database_url) as session:
                    session.execute(update(Stage).where(Stage.id == stage_id, Stage.status == RUNNING).values(heartbeat_at=utcnow()))
            except Exception:  # noqa: BLE001 - a missed beat is retried at the next one
                continue

    thread = threading.Thread(target=beat, name=f"heartbeat-{stage_id}", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join()

    return stop


def _fail(settings: Settings, stage_id: int, exc: Exception) -> None:
    with session_scope(settings.database_url) as session:
        stage = session.get(Stage, stage_id)
        assert stage is not None
        if stage.status == CANCELLED:
            return
        stage.status = FAILED
        stage.error = str(exc) if isinstance(exc, RelctlError) else f"{type(exc).__name__}: {exc}"
        stage.finished_at = utcnow()
        session.add(
            Event(
                experiment_id=stage.experiment_id,
                stage_id=stage_id,
                level="error",
                message=f"{stage.label}: failed: {stage.error}\n{traceback.format_exc()}",
            )
        )


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
    """Mark the stage done and record its metrics as rows, in one transaction."""
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
            )
        )


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

