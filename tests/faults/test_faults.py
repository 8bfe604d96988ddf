"""The fault suite: what a team's shared system meets every week, each ending with the experiment done,
exactly one set of metrics per run, and no stage computed twice (a resumed training redoes only the
steps after its last checkpoint).

Real workers (`relctl worker` processes), a real Redis and a real PostgreSQL; a Redis and a PostgreSQL
of the test's own where the test kills or restarts them. The visibility timeout stays at its default
(48 h): nothing here waits for Redis to redeliver. Every wait is bounded; no test asserts a duration.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.faults.conftest import PostgresServer, RedisServer, wait_until
from tests.support import RELCTL, Workers, relctl, relctl_json
from tests.test_distributed import experiment_dir  # noqa: F401 - a fixture

pytestmark = pytest.mark.services

SPEC = """\
name: {name}
data:
  qc: {{train: {data}/qc_train.jsonl, max_rows: 240}}
split: {{strategy: category-aware, folds: 4, train_folds: [0]}}
model: {{backbone: {backbone}, lora: {{r: 4, alpha: 8}}}}
train: {{epochs: {epochs}, lr: 1.0e-3, batch_size: 4, max_length: 32, checkpoint_steps: 10}}
baselines: {baselines}
"""


def write_spec(folder: Path, name: str = "faulty", *, epochs: int = 40, baselines: bool = False) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, data=folder / "data", backbone=folder / "tiny-backbone", epochs=epochs, baselines=str(baselines).lower()))
    return path


def submit(spec: Path, env: dict[str, str]) -> int:
    done = relctl("submit", str(spec), "--json", env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    import json

    return int(json.loads(done.stdout)["experiment_id"])


def training(database: str, experiment_id: int = 1):
    from relctl_core.db import Stage, session_scope

    with session_scope(database) as session:
        stage = session.scalars(select(Stage).where(Stage.kind == "train", Stage.experiment_id == experiment_id)).one_or_none()
        if stage is not None:
            session.expunge(stage)
    return stage


def past_step(database: str, step: int, experiment_id: int = 1):
    """The training once it runs past `step` (a checkpoint lies behind it), else None."""

    def check():
        stage = training(database, experiment_id)
        return stage if stage is not None and stage.status == "running" and (stage.progress or {}).get("step", 0) >= step else None

    return check


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def checkpoint_steps(artifacts: Path, cache_key: str) -> list[int]:
    return sorted(int(p.name.removeprefix("step-")) for p in (artifacts / "train" / cache_key / "out" / "checkpoints").glob("step-*"))


def finished(env: dict[str, str], experiment_id: int = 1):
    def check():
        status = relctl_json("status", str(experiment_id), env=env)
        assert isinstance(status, dict)
        return status if status["status"] in ("done", "failed", "cancelled") else None

    return check


def record(fault: str, database: str, **figures) -> None:
    """Write a fault's figures where RELCTL_FAULT_FIGURES points (bench/RESULTS.md quotes them)."""
    from relctl_core.db import Stage, session_scope

    with session_scope(database) as session:
        stages = session.scalars(select(Stage)).all()
        figures["stages"] = len(stages)
        figures["stages_recomputed"] = sum(max(0, s.attempts - 1) for s in stages if s.kind != "train")
        figures["trainings"] = [
            {"attempts": s.attempts, "resumed_from_step": s.output.get("resumed_from_step"), "steps_run": s.output.get("steps_run"), "total_steps": (s.progress or {}).get("total_steps")}
            for s in stages if s.kind == "train" and s.output
        ]
    target = os.environ.get("RELCTL_FAULT_FIGURES")
    print(f"fault figures: {fault}: {figures}")
    if target:
        import json

        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"fault": fault, **figures}) + "\n")


def running_again(database: str, attempt: int, experiment_id: int = 1):
    def check():
        stage = training(database, experiment_id)
        return stage if stage.status == "running" and stage.attempts == attempt else None

    return check


def assert_healed(database: str) -> dict[int, dict]:
    """Every experiment done, one set of metrics per run, every stage computed once; a training that
    ran more than once resumed each time and trained only the steps after its checkpoint. Returns the
    train stages' outputs by stage id."""
    from relctl_core.db import Event, Experiment, Metric, Run, Stage, session_scope

    trainings = {}
    with session_scope(database) as session:
        for experiment in session.scalars(select(Experiment)):
            assert experiment.status == "done", (experiment.id, experiment.status, experiment.error)
        for run in session.scalars(select(Run)):
            for fold in (None, 0):
                rows = session.scalar(
                    select(func.count()).select_from(Metric).where(Metric.run_id == run.id, Metric.name == "f1@oof", Metric.language.is_(None), Metric.fold.is_(None) if fold is None else Metric.fold == fold)
                )
                assert rows == 1, (run.name, fold, rows)
        for stage in session.scalars(select(Stage)):
            messages = session.scalars(select(Event.message).where(Event.stage_id == stage.id)).all()
            starts = [m for m in messages if m.startswith(f"{stage.label}: started on ")]
            assert len(starts) == stage.attempts, (stage.label, messages)
            assert sum(m == f"{stage.label}: done" for m in messages) == (1 if stage.attempts else 0), (stage.label, messages)
            if stage.kind != "train" or stage.cached_from is not None:
                assert stage.attempts <= (0 if stage.cached_from is not None else 1), (stage.label, messages)
                continue
            trainings[stage.id] = dict(stage.output)
            total = stage.progress["total_steps"]
            resumed = stage.output["resumed_from_step"]
            assert stage.output["steps_run"] == total - (resumed or 0), (stage.label, stage.output)
            assert (resumed is not None) == (stage.attempts > 1), (stage.label, stage.output)
        from relctl_core.db import Run

        trainings["metric_sets"] = max(
            session.scalar(select(func.count()).select_from(Metric).where(Metric.run_id == run.id, Metric.name == "f1@oof", Metric.language.is_(None), Metric.fold.is_(None)))
            for run in session.scalars(select(Run))
        )
    return trainings


def test_a_killed_training_worker_is_replaced_without_redelivery(experiment_dir: Path, fault_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    """SIGKILL of a training worker (an OOM kill, a preempted host): with the default visibility timeout
    Redis would hand the job back in 48 h; a sweeper on the same host sees the process gone and sends
    the stage again, and the next worker resumes from the last checkpoint."""
    database = fault_env["RELCTL_DATABASE_URL"]
    workers = Workers(fault_env, tmp_path)
    try:
        workers.start("cpu,translate")
        first, second = workers.start("train.cpu"), workers.start("train.cpu")
        submit(write_spec(experiment_dir, epochs=60), fault_env)
        running = wait_until(past_step(database, 35), "the training to pass a few checkpoints", workers=workers)
        holder_pid = int(running.worker_id.split("/")[3])  # the pool process; its parent is the worker's main process
        doomed = first if parent_of(holder_pid) == first.pid else second
        child = running.pid
        os.killpg(doomed.pid, signal.SIGKILL)  # main process and pool process: no chance to hand anything back
        killed_at = time.monotonic()
        doomed.wait()
        workers.procs.remove(doomed)
        resumed = wait_until(running_again(database, 2), "the other worker to take the training over", workers=workers)
        recovery = time.monotonic() - killed_at
        assert not alive(child), "the orphaned training outlived its worker"
        # The new attempt is still loading its model: these are the killed attempt's checkpoints.
        last = checkpoint_steps(Path(fault_env["RELCTL_ARTIFACT_ROOT"]), running.cache_key)[-1]
        assert [loss["host"] for loss in resumed.losses] == [os.uname().nodename]
        status = relctl("status", "1", env=fault_env)
        assert "taken over: worker on" in status.stdout and "lost at step" in status.stdout, status.stdout

        assert wait_until(finished(fault_env), "the other worker to finish", workers=workers)["status"] == "done"
        outputs = assert_healed(database)
        assert outputs[running.id]["resumed_from_step"] == last
        record("SIGKILL of a training worker, same host", database, recovery_seconds=round(recovery, 1), metric_sets=outputs["metric_sets"])
    finally:
        workers.stop()


def test_a_training_that_keeps_losing_its_worker_fails_naming_the_hosts(experiment_dir: Path, fault_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    env = {**fault_env, "RELCTL_MAX_ATTEMPTS": "2"}
    database = env["RELCTL_DATABASE_URL"]
    workers = Workers(env, tmp_path)
    try:
        workers.start("cpu,translate")
        submit(write_spec(experiment_dir, epochs=60), env)
        for attempt in (1, 2):
            doomed = workers.start("train.cpu")
            wait_until(lambda attempt=attempt: (s := training(database)).status == "running" and s.attempts == attempt and (s.progress or {}).get("step"), f"attempt {attempt} to train", workers=workers)
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait()
            workers.procs.remove(doomed)
        status = wait_until(finished(env), "the training to fail", workers=workers)
        assert status["status"] == "failed"
        stage = training(database)
        host = os.uname().nodename
        assert stage.status == "failed" and len(stage.losses) == 2
        assert f"lost its worker on 2 attempts (on {host}, {host})" in stage.error, stage.error
        assert "RELCTL_MAX_ATTEMPTS" in stage.error
    finally:
        workers.stop()


def test_a_worker_on_another_host_that_dies_is_found_by_its_silence(experiment_dir: Path, fault_env: dict[str, str], tmp_path: Path, skip_or_fail) -> None:  # noqa: F811
    """A worker whose process no sweeper can see (another host: here a UTS namespace of its own, with
    its own host name) is judged by its heartbeat: silent for 3 intervals, its training is sent again."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        skip_or_fail("a host of its own needs unshare as root")
    database = fault_env["RELCTL_DATABASE_URL"]
    workers = Workers(fault_env, tmp_path)
    log = (tmp_path / "worker-remote.log").open("wb")
    remote = subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", f'hostname gpu-host-2 && exec "{RELCTL}" worker --queues train.cpu --loglevel INFO'],
        env=workers.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        Workers._wait_ready(remote, Path(log.name))
        workers.start("cpu,translate")
        submit(write_spec(experiment_dir, epochs=60), fault_env)
        running = wait_until(past_step(database, 35), "the remote training to pass a few checkpoints", workers=workers)
        assert running.worker_host == "gpu-host-2"
        workers.start("train.cpu")
        os.killpg(remote.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        remote.wait()
        resumed = wait_until(running_again(database, 2), "the sweeper to notice the silence", workers=workers)
        recovery = time.monotonic() - killed_at
        assert resumed.losses[0]["host"] == "gpu-host-2" and "silent" in resumed.losses[0]["why"], resumed.losses
        assert wait_until(finished(fault_env), "a local worker to finish", workers=workers)["status"] == "done"
        outputs = assert_healed(database)
        record("SIGKILL of a training worker, another host", database, recovery_seconds=round(recovery, 1), metric_sets=outputs["metric_sets"])
    finally:
        if remote.poll() is None:
            os.killpg(remote.pid, signal.SIGKILL)
        workers.stop()


@pytest.mark.parametrize("own_redis", [False, True], ids=["without-persistence", "with-persistence"], indirect=True)
def test_a_redis_restart_loses_nothing(experiment_dir: Path, fault_env: dict[str, str], own_redis: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    """Redis restarts twice: once while the training's message waits in its queue (without persistence
    it is lost, and the sweeper sends it again; with it, it comes back), once while the training runs
    (the workers reconnect)."""
    database = fault_env["RELCTL_DATABASE_URL"]
    workers = Workers(fault_env, tmp_path)
    try:
        workers.start("cpu,translate")
        submit(write_spec(experiment_dir, epochs=30, baselines=True), fault_env)
        queued = wait_until(lambda: (s := training(database)).status == "queued" and s.task_id and s, "the training's message to wait in its queue", workers=workers)
        restarted_at = time.monotonic()
        own_redis.restart()  # without persistence the message is gone with it
        workers.start("train.cpu")
        wait_until(past_step(database, 15), "the training to run", workers=workers)
        recovery = time.monotonic() - restarted_at
        own_redis.restart()
        try:
            assert wait_until(finished(fault_env), "the experiment to finish", timeout=300, workers=workers)["status"] == "done"
        except AssertionError:
            print(relctl("status", "1", env=fault_env).stdout)
            print(relctl("logs", "1", env=fault_env).stdout)
            raise
        outputs = assert_healed(database)
        from relctl_core.db import Event, session_scope

        with session_scope(database) as session:
            resent = session.scalars(select(Event.message).where(Event.stage_id == queued.id, Event.message.like("%sent again%"))).all()
        if own_redis.persistent:
            assert training(database).task_id == queued.task_id and resent == []  # the message came back: nothing to send
        else:
            assert training(database).task_id != queued.task_id
            assert any("in no queue of the broker" in m for m in resent), resent
        kind = "with" if own_redis.persistent else "without"
        record(f"Redis restart {kind} persistence (twice)", database, recovery_seconds=round(recovery, 1), metric_sets=outputs["metric_sets"])
    finally:
        workers.stop()


def test_a_postgresql_restart_pauses_workers_and_watchers(experiment_dir: Path, own_postgres: PostgresServer, own_redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The run database restarts mid-training: workers and `submit --wait` wait for it and go on."""
    from tests.conftest import relctl_env_for, reset_caches
    from tests.faults.conftest import FAST

    # A heartbeat silent for 9 s counts: longer than the outage and the reconnection.
    env = relctl_env_for(tmp_path, own_postgres.url, f"{own_redis.url}/0", **{**FAST, "RELCTL_HEARTBEAT_SECONDS": "3"})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_caches()
    workers = Workers(env, tmp_path)
    try:
        workers.start("cpu,translate")
        workers.start("train.cpu")
        watcher = subprocess.Popen([RELCTL, "submit", str(write_spec(experiment_dir, epochs=40, baselines=True)), "--wait"], env=workers.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_until(past_step(env["RELCTL_DATABASE_URL"], 15), "the training to run", workers=workers)
        reset_caches()  # this process's pool would only hold dead connections
        own_postgres.restart(down_seconds=3)
        out, _ = watcher.communicate(timeout=600)
        assert watcher.returncode == 0, out
        assert "experiment 1: done" in out, out
        assert "run database unreachable" in out and "reachable again" in out, out
        outputs = assert_healed(env["RELCTL_DATABASE_URL"])
        assert all(p.poll() is None for p in workers.procs), workers.logs()
        record("PostgreSQL restart (3 s down) mid-training", env["RELCTL_DATABASE_URL"], metric_sets=outputs["metric_sets"])
    finally:
        workers.stop()
        reset_caches()


def test_sigterm_hands_the_training_back_to_be_resumed_elsewhere(experiment_dir: Path, fault_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    """systemd stops the worker (a host being drained or preempted): the training checkpoints at its
    next step, goes back to the queue and another worker resumes it from that very step."""
    database = fault_env["RELCTL_DATABASE_URL"]
    workers = Workers(fault_env, tmp_path)
    try:
        workers.start("cpu,translate")
        leaving = workers.start("train.cpu")
        submit(write_spec(experiment_dir, epochs=60), fault_env)
        running = wait_until(past_step(database, 15), "the training to run", workers=workers)
        leaving.send_signal(signal.SIGTERM)  # the main process only, as systemd's KillMode=mixed does
        assert leaving.wait(timeout=120) == 0
        workers.procs.remove(leaving)
        assert not alive(running.pid)
        handed = training(database)
        assert handed.status == "queued" and not handed.losses
        steps = checkpoint_steps(Path(fault_env["RELCTL_ARTIFACT_ROOT"]), running.cache_key)
        from relctl_core.db import Event, session_scope

        with session_scope(database) as session:
            messages = session.scalars(select(Event.message).where(Event.stage_id == running.id)).all()
        assert any(f"handed back by {os.uname().nodename}: the worker is stopping; the training checkpointed at step {steps[-1]}" in m for m in messages), messages

        stopped_at = time.monotonic()
        workers.start("train.cpu")
        wait_until(running_again(database, 2), "another worker to resume the training", workers=workers)
        recovery = time.monotonic() - stopped_at
        assert wait_until(finished(fault_env), "another worker to finish", workers=workers)["status"] == "done"
        outputs = assert_healed(database)
        assert outputs[running.id]["resumed_from_step"] == steps[-1]
        record("SIGTERM of a training worker (hand-back)", database, recovery_seconds_after_new_worker_starts=round(recovery, 1), metric_sets=outputs["metric_sets"])
    finally:
        workers.stop()


def test_the_same_experiment_submitted_twice_at_once_is_computed_once(experiment_dir: Path, fault_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    database = fault_env["RELCTL_DATABASE_URL"]
    workers = Workers(fault_env, tmp_path)
    try:
        workers.start("cpu,translate", "--concurrency", "2")
        workers.start("train.cpu", "--concurrency", "2")
        spec = write_spec(experiment_dir, epochs=8, baselines=True)
        both = [subprocess.Popen([RELCTL, "submit", str(spec), "--wait"], env=workers.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        for proc in both:
            out, _ = proc.communicate(timeout=600)
            assert proc.returncode == 0, out
        assert_healed(database)
        from relctl_core.db import Stage, session_scope

        with session_scope(database) as session:
            stages = session.scalars(select(Stage)).all()
        assert {s.experiment_id for s in stages} == {1, 2}
        by_key: dict[str, list] = {}
        for stage in stages:
            by_key.setdefault(stage.cache_key, []).append(stage)
        for twins in by_key.values():
            assert len(twins) == 2, [(s.label, s.experiment_id) for s in twins]
            computed = [s for s in twins if s.cached_from is None]
            assert len(computed) == 1, [(s.label, s.experiment_id, s.cached_from) for s in twins]
            assert [s.cached_from for s in twins if s.cached_from is not None] == [computed[0].id]
        waited = sum(1 for s in stages if s.cached_from is not None and s.attempts == 0)
        record("one experiment submitted twice at once", database, stages_served_from_twin=waited, metric_sets=1)
    finally:
        workers.stop()


def test_cancel_then_retry_resumes_the_training(experiment_dir: Path, fault_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    database = fault_env["RELCTL_DATABASE_URL"]
    workers = Workers(fault_env, tmp_path)
    try:
        workers.start("cpu,translate")
        workers.start("train.cpu")
        submit(write_spec(experiment_dir, epochs=60), fault_env)
        running = wait_until(past_step(database, 25), "the training to pass a checkpoint", workers=workers)
        cancelled = relctl("cancel", "1", env=fault_env)
        assert cancelled.returncode == 0, cancelled.stderr
        wait_until(lambda: not alive(running.pid), "the cancelled training to stop", timeout=60)
        assert training(database).status == "cancelled"
        last = checkpoint_steps(Path(fault_env["RELCTL_ARTIFACT_ROOT"]), running.cache_key)[-1]
        time.sleep(2 * float(fault_env["RELCTL_SWEEP_SECONDS"]))  # sweeps pass: nothing revives a cancelled stage
        assert training(database).status == "cancelled"
        again = relctl("retry", "1", env=fault_env)
        assert again.returncode == 0, again.stderr
        assert wait_until(finished(fault_env), "the retried experiment to finish", workers=workers)["status"] == "done"
        outputs = assert_healed(database)
        assert outputs[running.id]["resumed_from_step"] == last
        record("cancel mid-training, then retry", database, metric_sets=outputs["metric_sets"])
    finally:
        workers.stop()


def test_a_training_past_its_time_limit_checkpoints_and_fails_clearly(experiment_dir: Path, fault_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    database = fault_env["RELCTL_DATABASE_URL"]
    spec = write_spec(experiment_dir, epochs=400)
    spec.write_text(spec.read_text().replace("checkpoint_steps: 10}", "checkpoint_steps: 100000, time_limit: 6s}"))
    workers = Workers(fault_env, tmp_path)
    try:
        workers.start("cpu,translate")
        workers.start("train.cpu")
        submit(spec, fault_env)
        status = wait_until(finished(fault_env), "the training to pass its time limit", workers=workers)
        assert status["status"] == "failed"
        stage = training(database)
        assert stage.status == "failed" and not stage.losses
        assert "ran past train.time_limit of 6 s" in stage.error and "checkpointed at step" in stage.error, stage.error
        assert "relctl retry" in stage.error
        (step,) = checkpoint_steps(Path(fault_env["RELCTL_ARTIFACT_ROOT"]), stage.cache_key)  # its own, not a periodic one
        assert f"checkpointed at step {step}" in stage.error
        assert relctl("retry", "1", env=fault_env).returncode == 0
        wait_until(lambda: (s := training(database)).attempts == 2 and s.status == "failed", "the retried attempt to pass the limit too", workers=workers)
        from relctl_core.db import Event, session_scope

        with session_scope(database) as session:
            messages = session.scalars(select(Event.message).where(Event.stage_id == stage.id)).all()
        assert any(f"resumed from the checkpoint at step {step}" in m for m in messages), messages
    finally:
        workers.stop()
