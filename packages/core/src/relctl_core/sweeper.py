"""Self-healing: every worker sweeps the run database for stages that lost their worker or their message.

The run database is the source of truth and Celery only carries stage ids, so anything the broker or a
worker loses can be told from the database and sent again:

* a ``running`` stage whose worker is gone (its process no longer exists on this host, or its heartbeat
  has been silent for 3 intervals) goes back to ``queued`` and is sent again; a training resumes from
  its last checkpoint. After RELCTL_MAX_ATTEMPTS lost attempts it fails, naming the hosts it died on;
* a ``queued`` stage whose message is in no queue and held by no worker for RELCTL_REQUEUE_SECONDS
  (a Redis restarted without persistence, a flushed database, a message dropped with a connection) is
  sent again. So is one whose message was delivered that long ago and never began: the worker that took
  it died or lost its connection before starting it, and the delivery left behind would come back only
  after the visibility timeout (48 h);
* a ``queued`` stage that waited for its twin (the same cache key, in another experiment) is sent again
  once the twin has an outcome;
* a ``pending`` stage whose inputs are all done (the worker that finished them could not reach the
  broker) is enqueued.

Every worker runs a sweeper thread, and sweepers need no election: each action is one conditional
UPDATE, so of two sweepers that see the same stage only one acts. A second message for a stage is
harmless anyway: a delivery of a stage that is held, waiting or finished does nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from relctl_core.db import (
    ACTIVE,
    DONE,
    PENDING,
    QUEUED,
    RUNNING,
    Event,
    Experiment,
    Stage,
    is_unreachable,
    session_scope,
    utcnow,
)
from relctl_core.pipeline import STALE_HEARTBEATS, advance, lost_holder, reclaim, resend, send_stage
from relctl_core.settings import Settings

log = logging.getLogger("relctl.sweeper")


@dataclass
class SweepReport:
    taken_over: list[int] = field(default_factory=list)  # running stages whose worker was gone, queued again
    failed: list[int] = field(default_factory=list)  # ... that had lost max_attempts workers
    resent: list[int] = field(default_factory=list)  # queued stages whose message was missing
    woken: list[int] = field(default_factory=list)  # queued stages whose twin has an outcome
    advanced: list[int] = field(default_factory=list)  # experiments whose ready stages were enqueued

    def __bool__(self) -> bool:
        return bool(self.taken_over or self.failed or self.resent or self.woken or self.advanced)


class MessageFinder:
    """Tells whether a stage's message is still somewhere in the broker: waiting in its queue, or
    delivered to a worker that has not acknowledged it. None: this broker cannot be asked."""

    def __init__(self, broker_url: str) -> None:
        self.client: Any = None
        if broker_url.startswith(("redis://", "rediss://")):
            import redis

            self.client = redis.Redis.from_url(broker_url, socket_timeout=10, socket_connect_timeout=5)

    def present(self, queue: str, task_id: str | None, *, lost_after: float | None = None) -> bool | None:
        """lost_after: a delivery older than this many seconds counts as lost. The stage it carries is
        still queued, and a worker marks a stage running as soon as it receives it, so the worker that
        took it is gone or lost its connection before it began (a prefetched message is dropped from the
        worker's memory on a reconnection, and kombu's restore fails while Redis is away)."""
        if self.client is None:
            return None
        if not task_id:
            return False
        # kombu keeps a queue as a list per priority step, and every delivered message that is not yet
        # acknowledged in the "unacked" hash, with its delivery time in the "unacked_index" sorted set.
        # A message moves between them (delivered, or restored after the visibility timeout), so the
        # lists are read on both sides of the hash.
        needle = task_id.encode()
        keys = [key for key in self.client.scan_iter(match=f"{queue}*", count=1000) if key == queue.encode() or key.startswith(queue.encode() + b"\x06\x16")]

        def in_queues() -> bool:
            return any(needle in item for key in keys for item in self.client.lrange(key, 0, -1))

        def delivered() -> bool:
            tags = [tag for tag, value in self.client.hscan_iter("unacked", count=1000) if needle in value]
            if not tags or lost_after is None:
                return bool(tags)
            now = time.time()
            # A tag without a delivery time is one kombu is writing or restoring this moment: present.
            return any((at := self.client.zscore("unacked_index", tag)) is None or now - at < lost_after for tag in tags)

        return in_queues() or delivered() or in_queues()


def sweep(
    settings: Settings, *, finder: MessageFinder | None = None, send: Callable[[Stage], str] | None = None, heartbeats: bool = True
) -> SweepReport:
    """One pass over the active stages; see the module's docstring. heartbeats=False judges running
    stages by their process alone (see lost_holder)."""
    send = send or send_stage
    finder = finder or MessageFinder(settings.broker_url)
    report = SweepReport()
    now = utcnow()
    with session_scope(settings.database_url) as session:
        running = session.scalars(select(Stage).where(Stage.status == RUNNING)).all()
        lost = [(stage, reason) for stage in running if (reason := lost_holder(settings, stage, now, heartbeats=heartbeats)) is not None]
    for stage, reason in lost:
        with session_scope(settings.database_url) as session:
            current = session.get(Stage, stage.id)
            if current is None or lost_holder(settings, current, heartbeats=heartbeats) is None:
                continue
            outcome = reclaim(settings, session, current, reason)
            session.flush()
            if outcome is not None:
                session.refresh(current)
                session.expunge(current)
        if outcome == QUEUED:
            report.taken_over.append(stage.id)
            resend(settings, current, send)
        elif outcome is not None:
            report.failed.append(stage.id)
            advance(settings, stage.experiment_id, send)  # settles the experiment

    cutoff = now - dt.timedelta(seconds=settings.requeue_seconds)
    with session_scope(settings.database_url) as session:
        queued = session.scalars(select(Stage).where(Stage.status == QUEUED, Stage.queued_at < cutoff)).all()
        twins = {t.id: t for t in session.scalars(select(Stage).where(Stage.id.in_({s.waits_for for s in queued if s.waits_for})))}
        for stage in queued:
            session.expunge(stage)
    for stage in queued:
        if stage.waits_for is not None:
            twin = twins.get(stage.waits_for)
            if twin is not None and twin.status in ACTIVE and lost_holder(settings, twin, now) is None:
                continue  # its twin is still on it
            reason = "woken"
        else:
            present = finder.present(stage.queue, stage.task_id, lost_after=settings.requeue_seconds)
            if present is None or present:
                continue
            reason = "resent"
        with session_scope(settings.database_url) as session:
            # queued_at moves on in the same UPDATE: another sweeper's condition no longer holds.
            taken = session.execute(
                update(Stage).where(Stage.id == stage.id, Stage.status == QUEUED, Stage.queued_at < cutoff).values(queued_at=utcnow(), waits_for=None)
            ).rowcount
            if taken:
                why = (
                    "the stage it waited for has an outcome" if reason == "woken"
                    else f"its message is in no queue of the broker and held by no worker that began it after {settings.requeue_seconds:.0f} s"
                )
                session.add(Event(experiment_id=stage.experiment_id, stage_id=stage.id, level="warning", message=f"{stage.label}: sent again: {why}"))
        if taken and resend(settings, stage, send):
            (report.woken if reason == "woken" else report.resent).append(stage.id)

    with session_scope(settings.database_url) as session:
        candidates = session.scalars(
            select(Stage.experiment_id)
            .join(Experiment, Experiment.id == Stage.experiment_id)
            .where(Stage.status == PENDING, Experiment.status.in_(ACTIVE))
            .distinct()
        ).all()
        stuck = []
        for experiment_id in candidates:
            stages = session.execute(select(Stage.status, Stage.depends_on).where(Stage.experiment_id == experiment_id)).all()
            status_of = dict(session.execute(select(Stage.id, Stage.status).where(Stage.id.in_({d for _, deps in stages for d in deps}))).tuples().all())
            if any(status == PENDING and all(status_of.get(d) == DONE for d in deps) for status, deps in stages):
                stuck.append(experiment_id)
    for experiment_id in stuck:
        if advance(settings, experiment_id, send):
            report.advanced.append(experiment_id)
    if report:
        log.warning("sweep: %s", json.dumps(report.__dict__))
    return report


class Sweeper:
    """A daemon thread that sweeps every settings.sweep_seconds (a little sooner at random, so that the
    sweepers of many workers spread out), starting soon after the worker does: a host that rebooted finds what
    its dead workers left at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="relctl-sweeper", daemon=True)
        self.finder: MessageFinder | None = None

    def start(self) -> Sweeper:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=30)

    def _loop(self) -> None:
        delay = min(2.0, self.settings.sweep_seconds)
        # After this sweeper could not reach the database, it judges no heartbeat until the workers
        # have had as long to beat again as silence takes to count: their beats were lost too.
        trust_heartbeats_at = 0.0
        while not self.stopped.wait(delay):
            try:
                self.finder = self.finder or MessageFinder(self.settings.broker_url)
                sweep(self.settings, finder=self.finder, heartbeats=time.monotonic() >= trust_heartbeats_at)
            except Exception as exc:  # noqa: BLE001 - a broker or database away: the next sweep tries again
                log.warning("sweep failed: %s: %s", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                self.finder = None
                if is_unreachable(exc):
                    trust_heartbeats_at = time.monotonic() + self.settings.heartbeat_seconds * (STALE_HEARTBEATS + 1)
            delay = self.settings.sweep_seconds * (0.8 + 0.2 * random.random())  # never longer than the period
