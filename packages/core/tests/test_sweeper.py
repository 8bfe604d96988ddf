"""The sweeper's decisions on a real run database: which stages lost their worker or their message, and
that of two sweepers only one acts. Sending is recorded instead of going to a broker, except where the
question is the broker itself (the real Redis)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from relctl_core.db import Event, Experiment, Stage, session_scope, utcnow
from relctl_core.liveness import holder_is_gone, process_identity
from relctl_core.migrate import ensure_schema
from relctl_core.pipeline import STALE_HEARTBEATS, StageContext, _record_result, _start_heartbeat
from relctl_core.settings import load_settings
from relctl_core.sweeper import MessageFinder, sweep


class Recorder:
    """Stands in for the broker: remembers what was sent, under fresh task ids."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, stage: Stage) -> str:
        with self.lock:
            self.sent.append(stage.id)
            return f"task-{len(self.sent)}"


class NoBroker:
    def present(self, queue: str, task_id: str | None, *, lost_after: float | None = None) -> bool | None:
        return None


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from relctl_core import db

    db.get_engine.cache_clear()
    db._sessionmaker.cache_clear()
    monkeypatch.setenv("RELCTL_HOME", str(tmp_path))
    for key in ("RELCTL_DATABASE_URL", "RELCTL_BROKER_URL", "RELCTL_MAX_ATTEMPTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RELCTL_HEARTBEAT_SECONDS", "10")
    settings = load_settings()
    ensure_schema(settings.database_url)
    yield settings
    db.get_engine.cache_clear()
    db._sessionmaker.cache_clear()


def add_stage(settings, **values) -> int:
    with session_scope(settings.database_url) as session:
        experiment = Experiment(name="e", status="running", spec_path="e.yaml", spec_text="", spec={})
        session.add(experiment)
        session.flush()
        stage = Stage(
            experiment_id=experiment.id, kind="train", key=f"k{experiment.id}", label="train fold 0", task_name="relctl.trainer.train",
            queue="train.cpu", config={"gpu": "cpu"}, depends_on=[], **values,
        )
        session.add(stage)
        session.flush()
        return stage.id


def get(settings, stage_id: int) -> Stage:
    with session_scope(settings.database_url) as session:
        stage = session.get(Stage, stage_id)
        session.expunge(stage)
        return stage


def dead_identity() -> str:
    proc = subprocess.Popen(["sleep", "60"])
    identity = process_identity(proc.pid)
    proc.kill()
    proc.wait()
    return identity


def test_a_process_of_this_host_is_judged_by_its_existence() -> None:
    assert not holder_is_gone(process_identity())
    assert holder_is_gone(dead_identity())
    # Another host's, or one this host cannot read: left to the heartbeat.
    assert not holder_is_gone("other-host/" + process_identity().split("/", 1)[1].replace(str(os.getpid()), "1", 1))
    assert not holder_is_gone(None) and not holder_is_gone("garbage")


def test_a_stage_whose_worker_process_is_gone_is_taken_over_at_once(settings) -> None:
    now = utcnow()
    stage_id = add_stage(settings, status="running", attempts=1, worker_host="here", worker_id=dead_identity(), heartbeat_at=now, queued_at=now, progress={"step": 30})
    alive_id = add_stage(settings, status="running", attempts=1, worker_host="here", worker_id=process_identity(), heartbeat_at=now, queued_at=now)
    send = Recorder()
    report = sweep(settings, finder=NoBroker(), send=send)
    assert report.taken_over == [stage_id] and send.sent == [stage_id]
    stage = get(settings, stage_id)
    assert stage.status == "queued" and stage.worker_id is None and stage.task_id == "task-1"
    assert len(stage.losses) == 1 and stage.losses[0]["step"] == 30 and "gone" in stage.losses[0]["why"]
    assert get(settings, alive_id).status == "running"
    with session_scope(settings.database_url) as session:
        messages = session.scalars(select(Event.message).where(Event.stage_id == stage_id)).all()
    assert any("taken over: its worker process on" in m and "1 of 3 attempts lost" in m for m in messages), messages


def test_a_silent_heartbeat_counts_only_after_four_intervals(settings) -> None:
    elsewhere = "gpu-host-9/abcd1234/4026531836/1234/999"
    recent = utcnow() - dt.timedelta(seconds=10 * STALE_HEARTBEATS - 5)
    old = utcnow() - dt.timedelta(seconds=10 * STALE_HEARTBEATS + 5)
    fresh_id = add_stage(settings, status="running", attempts=1, worker_host="gpu-host-9", worker_id=elsewhere, heartbeat_at=recent)
    stale_id = add_stage(settings, status="running", attempts=1, worker_host="gpu-host-9", worker_id=elsewhere, heartbeat_at=old)
    send = Recorder()
    assert sweep(settings, finder=NoBroker(), send=send, heartbeats=False).taken_over == []  # a judge just back from an outage waits
    assert sweep(settings, finder=NoBroker(), send=send).taken_over == [stale_id]
    assert get(settings, fresh_id).status == "running"
    assert "silent for" in get(settings, stale_id).losses[0]["why"]


def test_two_sweepers_never_both_act(settings) -> None:
    ids = [add_stage(settings, status="running", attempts=1, worker_host="here", worker_id=dead_identity(), heartbeat_at=utcnow()) for _ in range(5)]
    send = Recorder()
    barrier = threading.Barrier(4)

    def one() -> None:
        barrier.wait()
        sweep(settings, finder=NoBroker(), send=send)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(send.sent) == ids  # each lost stage sent once, by whichever sweeper got there first
    assert all(len(get(settings, i).losses) == 1 for i in ids)


def test_max_attempts_lost_fail_the_stage_naming_the_hosts(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELCTL_MAX_ATTEMPTS", "2")
    settings = load_settings()
    earlier = [{"host": "gpu-host-1", "worker": "x", "at": "then", "step": 5, "why": "silent"}]
    stage_id = add_stage(settings, status="running", attempts=2, worker_host="gpu-host-2", worker_id=dead_identity(), heartbeat_at=utcnow(), losses=earlier)
    send = Recorder()
    report = sweep(settings, finder=NoBroker(), send=send)
    assert report.failed == [stage_id] and send.sent == []
    stage = get(settings, stage_id)
    assert stage.status == "failed"
    assert "lost its worker on 2 attempts (on gpu-host-1, gpu-host-2)" in stage.error and "RELCTL_MAX_ATTEMPTS" in stage.error
    with session_scope(settings.database_url) as session:
        assert session.get(Experiment, stage.experiment_id).status == "failed"


def test_queued_stages_are_sent_again_only_when_the_broker_lost_their_message(settings) -> None:
    long_ago = utcnow() - dt.timedelta(seconds=settings.requeue_seconds + 5)
    lost_id = add_stage(settings, status="queued", attempts=0, queued_at=long_ago, task_id="lost-one")
    held_id = add_stage(settings, status="queued", attempts=0, queued_at=long_ago, task_id="held-one")
    young_id = add_stage(settings, status="queued", attempts=0, queued_at=utcnow(), task_id="young-one")

    class Finder:
        def present(self, queue: str, task_id: str | None, *, lost_after: float | None = None) -> bool | None:
            assert lost_after == settings.requeue_seconds
            return task_id != "lost-one"

    send = Recorder()
    assert sweep(settings, finder=Finder(), send=send).resent == [lost_id]
    assert send.sent == [lost_id]
    assert get(settings, lost_id).task_id == "task-1"
    assert {get(settings, i).task_id for i in (held_id, young_id)} == {"held-one", "young-one"}
    # A broker that cannot be asked (the embedded one) never has its stages sent twice.
    assert sweep(settings, finder=NoBroker(), send=send).resent == []


def test_a_stage_waiting_for_its_twin_is_woken_when_the_twin_ends(settings) -> None:
    long_ago = utcnow() - dt.timedelta(seconds=settings.requeue_seconds + 5)
    twin_id = add_stage(settings, status="running", attempts=1, worker_host="here", worker_id=process_identity(), heartbeat_at=utcnow())
    waiter_id = add_stage(settings, status="queued", attempts=0, queued_at=long_ago, waits_for=twin_id)
    send = Recorder()
    assert sweep(settings, finder=NoBroker(), send=send).woken == []
    with session_scope(settings.database_url) as session:
        session.get(Stage, twin_id).status = "done"
    assert sweep(settings, finder=NoBroker(), send=send).woken == [waiter_id]
    assert get(settings, waiter_id).waits_for is None


def test_a_holder_that_was_taken_over_stops_and_its_result_is_discarded(settings) -> None:
    import time

    from relctl_core import settings as settings_module

    stage_id = add_stage(settings, status="running", attempts=1, worker_host="here", worker_id=process_identity(), heartbeat_at=utcnow())
    fast = settings_module.Settings(**{**settings.__dict__, "heartbeat_seconds": 0.05})
    ctx = StageContext(fast, stage_id, 1, None, "train", {}, [], Path("."), attempt=1)
    stop = _start_heartbeat(fast, ctx)
    try:
        with session_scope(settings.database_url) as session:  # another worker claims it: attempt 2
            session.get(Stage, stage_id).attempts = 2
        deadline = time.monotonic() + 30
        while not ctx.lost.is_set():
            assert time.monotonic() < deadline, "the old holder never learned it lost the stage"
            time.sleep(0.05)
    finally:
        stop()
    with session_scope(settings.database_url) as session:
        _record_result(session, ctx, {"metrics": [{"name": "f1", "value": 1.0}]})
    assert get(settings, stage_id).status == "running"  # the successor's to finish, not overwritten


def test_the_message_finder_asks_the_real_redis(redis_url_or_skip) -> None:
    import redis
    from celery import Celery

    broker = f"{redis_url_or_skip}/9"
    client = redis.Redis.from_url(broker)
    client.flushdb()
    app = Celery("finder-test", broker=broker, set_as_current=False)
    try:
        result = app.send_task("relctl.core.ingest", kwargs={"stage_id": 1}, queue="cpu")
        finder = MessageFinder(broker)
        assert finder.present("cpu", result.id) is True
        assert finder.present("cpu", "not-a-task") is False
        assert finder.present("train.cpu", result.id) is False
        # Delivered to a worker, not yet acknowledged: kombu moves it to the "unacked" hash.
        message = client.rpop("cpu")
        client.hset("unacked", "tag-1", b'[' + message + b', "", "cpu"]')
        assert finder.present("cpu", result.id) is True
        client.flushdb()  # a Redis restarted without persistence
        assert finder.present("cpu", result.id) is False
        assert MessageFinder("filesystem://").present("cpu", result.id) is None
    finally:
        client.flushdb()
        app.close()


TAKE_AND_HOLD = """
import sys, time
from kombu import Connection
with Connection(sys.argv[1]) as connection:
    channel = connection.channel()
    message = channel.basic_get("cpu", no_ack=False)  # delivered: in the "unacked" hash, not yet begun
    assert message is not None
    print("taken", flush=True)
    time.sleep(600)
"""


def test_a_delivery_whose_worker_died_before_it_began_is_sent_again(settings, redis_url_or_skip) -> None:
    """A worker takes a stage's message and is killed (or loses Redis) before it marks the stage running.
    kombu leaves the delivery in its "unacked" hash until the visibility timeout (48 h); the stage is
    sent again after RELCTL_REQUEUE_SECONDS instead of waiting that long."""
    import signal
    import sys
    import time

    import redis
    from celery import Celery

    broker = f"{redis_url_or_skip}/9"
    client = redis.Redis.from_url(broker)
    client.flushdb()
    app = Celery("finder-test", broker=broker, set_as_current=False)
    holder = None
    try:
        result = app.send_task("relctl.core.ingest", kwargs={"stage_id": 1}, queue="cpu")
        holder = subprocess.Popen([sys.executable, "-c", TAKE_AND_HOLD, broker], stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "taken"
        holder.send_signal(signal.SIGKILL)  # no chance to restore it to the queue
        holder.wait()
        assert client.llen("cpu") == 0 and client.hlen("unacked") == 1
        finder = MessageFinder(broker)
        assert finder.present("cpu", result.id) is True  # held by a worker, as far as Redis can tell
        assert finder.present("cpu", result.id, lost_after=60) is True  # a fresh delivery may still begin
        time.sleep(1.2)
        assert finder.present("cpu", result.id, lost_after=1) is False

        long_ago = utcnow() - dt.timedelta(seconds=settings.requeue_seconds + 5)
        stage_id = add_stage(settings, status="queued", attempts=0, queued_at=long_ago, task_id=result.id)
        settings = dataclasses.replace(settings, requeue_seconds=1)
        send = Recorder()
        assert sweep(settings, finder=finder, send=send).resent == [stage_id]
        assert get(settings, stage_id).task_id == "task-1"
        with session_scope(settings.database_url) as session:
            events = session.scalars(select(Event.message).where(Event.stage_id == stage_id)).all()
        assert any("held by no worker that began it" in m for m in events), events
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
        client.flushdb()
        app.close()


@pytest.fixture
def redis_url_or_skip(skip_or_fail) -> str:
    import redis

    url = os.environ.get("RELCTL_TEST_REDIS", "redis://127.0.0.1:6379")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        skip_or_fail(f"Redis not reachable at {url}: {exc}")
    return url


def test_cpu_stages_carry_a_soft_time_limit_and_trainings_none(redis_url_or_skip, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import redis

    from relctl_core import celery_app
    from relctl_core.pipeline import send_stage

    broker = f"{redis_url_or_skip}/9"
    client = redis.Redis.from_url(broker)
    client.flushdb()
    monkeypatch.setenv("RELCTL_BROKER_URL", broker)
    monkeypatch.setenv("RELCTL_STAGE_TIME_LIMIT", "1800")
    celery_app.reset_app()
    try:
        split = Stage(id=7, task_name="relctl.splitter.split", config={})
        train = Stage(id=8, task_name="relctl.trainer.train", config={"gpu": "cpu"})
        send_stage(split)
        send_stage(train)
        headers = {queue: json.loads(client.lindex(queue, 0))["headers"] for queue in ("cpu", "train.cpu")}
        assert headers["cpu"]["timelimit"] == [None, 1800.0]
        assert headers["train.cpu"]["timelimit"] == [None, None]
    finally:
        client.flushdb()
        celery_app.reset_app()
