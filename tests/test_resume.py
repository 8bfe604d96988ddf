"""A worker killed outright mid-training: Redis redelivers the job, a second worker resumes it from the
last checkpoint, and the run ends with one set of metrics."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support import Workers, relctl, relctl_json
from tests.test_distributed import experiment_dir, wait_for  # noqa: F401 - experiment_dir is a fixture

SPEC = """\
name: resumable
data:
  qc: {{train: {data}/qc_train.jsonl, max_rows: 240}}
split: {{strategy: category-aware, folds: 4, train_folds: [0]}}
model: {{backbone: {backbone}, lora: {{r: 4, alpha: 8}}}}
train: {{epochs: 60, lr: 1.0e-3, batch_size: 4, max_length: 32, checkpoint_steps: 10}}
baselines: false
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has finished; only its exit status is left to collect


@pytest.mark.services
def test_a_training_whose_worker_is_killed_resumes_on_another_worker(experiment_dir: Path, distributed_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    from relctl_core.db import Event, Metric, Run, Stage, session_scope

    # Short timeouts so that the test sees in seconds what takes hours in production: Redis hands the
    # unacknowledged job back after 5 s, and a stage silent for 4 heartbeats (4 s) is taken over.
    env = {**distributed_env, "RELCTL_VISIBILITY_TIMEOUT": "5", "RELCTL_HEARTBEAT_SECONDS": "1"}
    database = env["RELCTL_DATABASE_URL"]
    spec = experiment_dir / "resumable.yaml"
    spec.write_text(SPEC.format(data=experiment_dir / "data", backbone=experiment_dir / "tiny-backbone"))
    workers = Workers(env, tmp_path)
    try:
        workers.start("cpu,translate")
        doomed = workers.start("train.cpu")
        submitted = relctl("submit", str(spec), env=env)
        assert submitted.returncode == 0, submitted.stderr

        def training() -> Stage | None:
            with session_scope(database) as session:
                stage = session.scalars(select(Stage).where(Stage.kind == "train")).one()
                session.expunge(stage)
            return stage

        def past_a_few_checkpoints() -> Stage | None:
            stage = training()
            return stage if stage and stage.status == "running" and (stage.progress or {}).get("step", 0) >= 35 else None

        running = wait_for(past_a_few_checkpoints, workers, "the training to pass a few checkpoints")
        child_pid, total_steps = running.pid, running.progress["total_steps"]
        assert child_pid is not None and _alive(child_pid)

        # The worker dies outright (its main process and its pool process): no chance to hand anything back.
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
        workers.procs.remove(doomed)
        # The training runs in a session of its own, yet it must not outlive its worker.
        deadline = time.monotonic() + 30
        while _alive(child_pid):
            assert time.monotonic() < deadline, "the training process outlived its killed worker"
            time.sleep(0.2)
        checkpoints = experiment_dir.parent / "shared-artifacts" / "train" / str(running.cache_key) / "out" / "checkpoints"
        saved = [int(p.name.removeprefix("step-")) for p in checkpoints.glob("step-*")]
        assert len(saved) == 1 and 35 - 10 < saved[0] < total_steps, saved
        last_checkpoint = saved[0]
        assert training().status == "running"  # nobody has told the database: only silence says it

        workers.start("train.cpu")

        def finished() -> dict | None:
            status = relctl_json("status", "1", env=env)
            assert isinstance(status, dict)
            return status if status["status"] in ("done", "failed") else None

        status = wait_for(finished, workers, "the second worker to finish the experiment")
        assert status["status"] == "done", status

        stage = training()
        assert stage.status == "done" and stage.attempts == 2
        # It resumed from the last checkpoint and trained only the steps after it.
        assert stage.output["resumed_from_step"] == last_checkpoint
        assert stage.output["steps_run"] == total_steps - last_checkpoint
        with session_scope(database) as session:
            messages = session.scalars(select(Event.message).where(Event.stage_id == stage.id)).all()
            model_run = session.scalars(select(Run).where(Run.kind == "model")).one()
            cv_rows = session.scalar(
                select(func.count()).select_from(Metric).where(
                    Metric.run_id == model_run.id, Metric.name == "f1@oof", Metric.fold.is_(None), Metric.language.is_(None)
                )
            )
            fold_rows = session.scalar(
                select(func.count()).select_from(Metric).where(Metric.run_id == model_run.id, Metric.name == "f1@oof", Metric.fold == 0, Metric.language.is_(None))
            )
        assert any("previous worker went silent" in m for m in messages), messages
        assert any(f"resumed from the checkpoint at step {last_checkpoint}" in m for m in messages), messages
        assert (cv_rows, fold_rows) == (1, 1)
        board = relctl_json("leaderboard", env=env)
        assert [row["run"] for row in board["rows"]] == ["resumable"]  # type: ignore[index]
    finally:
        workers.stop()
