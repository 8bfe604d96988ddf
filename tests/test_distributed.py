"""Distributed mode with real parts: Redis broker, PostgreSQL run database, two separate worker processes."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.support import relctl, relctl_json
from tests.tiny_model import build_tiny_backbone

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "data"

SPEC = """\
name: distributed
data:
  qc: {{train: {data}/qc_train.jsonl, test: {data}/qc_test.jsonl, max_rows: 240}}
translation: {{enabled: true, backend: file, path: {data}/translations.tsv, mode: orig+en}}
split: {{strategy: category-aware, folds: 4, train_folds: [0, 1]}}
model: {{backbone: {backbone}, lora: {{r: 4, alpha: 8}}}}
train: {{epochs: 1, lr: {lr}, batch_size: 16, max_length: 32}}
"""


@pytest.fixture
def experiment_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "exp"
    folder.mkdir()
    data = folder / "data"
    shutil.copytree(DEMO, data)
    build_tiny_backbone(folder / "tiny-backbone", [data / "qc_train.jsonl", data / "translations.tsv"])
    return folder


def write_spec(folder: Path, lr: float) -> Path:
    path = folder / f"experiment-{lr}.yaml"
    path.write_text(SPEC.format(data=folder / "data", backbone=folder / "tiny-backbone", lr=lr))
    return path


def stage_table(experiment_id: int, env: dict[str, str]) -> list[dict]:
    status = relctl_json("status", str(experiment_id), env=env)
    assert isinstance(status, dict)
    return status["stages"]


@pytest.mark.services
def test_submit_to_separate_workers_over_redis_and_postgres(experiment_dir: Path, distributed_env: dict[str, str], workers) -> None:
    workers.start("cpu,translate")
    workers.start("train.cpu")

    done = relctl("submit", str(write_spec(experiment_dir, 1e-3)), "--wait", env=distributed_env)
    assert done.returncode == 0, done.stdout + done.stderr + workers.logs()
    assert "experiment 1: done" in done.stdout

    board = relctl_json("leaderboard", env=distributed_env)
    assert isinstance(board, dict)
    runs = {row["run"]: row for row in board["rows"]}
    assert set(runs) == {"distributed", "baseline:all-relevant", "baseline:lexical"}
    for row in runs.values():
        assert row["folds"] == 2 and 0.0 <= row["mean"] <= 1.0
    assert runs["baseline:all-relevant"]["roc_auc"] == pytest.approx(0.5)

    stages = stage_table(1, distributed_env)
    hosts = {s["queue"] for s in stages}
    assert {"cpu", "translate", "train.cpu"} <= hosts
    assert all(s["status"] == "done" and s["attempts"] == 1 for s in stages)

    # The same experiment again: every stage is served from the cache.
    again = relctl("submit", str(write_spec(experiment_dir, 1e-3)), "--wait", env=distributed_env)
    assert again.returncode == 0, again.stderr
    stages = stage_table(2, distributed_env)
    assert all(s["cached"] and s["attempts"] == 0 for s in stages), stages

    # Only the learning rate changes: ingest, translation, split and baselines are re-used, training is not.
    changed = relctl("submit", str(write_spec(experiment_dir, 2e-3)), "--wait", env=distributed_env)
    assert changed.returncode == 0, changed.stderr + workers.logs()
    cached = {s["stage"].split()[0]: s["cached"] for s in stage_table(3, distributed_env) if not s["stage"].startswith("evaluate distributed")}
    assert cached == {"ingest": True, "translate": True, "split": True, "train": False, "baseline": True, "evaluate": True}

    # Every experiment lives in PostgreSQL, where the leaderboard reads it.
    listed = relctl_json("list", env=distributed_env)
    assert [e["status"] for e in listed] == ["done", "done", "done"]  # type: ignore[union-attr]
    assert distributed_env["RELCTL_DATABASE_URL"].startswith("postgresql")
    translations = json.loads(relctl("show", "1", "--json", env=distributed_env).stdout)["translations"][0]
    assert translations["translated"] > 0


def wait_for(condition, workers, what: str):
    """Poll until `condition()` is truthy; fail as soon as a worker process has died instead."""
    while not (value := condition()):
        dead = [p.args for p in workers.procs if p.poll() is not None]
        assert not dead, f"worker died while waiting for {what}: {dead}\n{workers.logs()}"
        time.sleep(0.5)
    return value


@pytest.mark.services
def test_cancel_kills_the_running_training_process_group(experiment_dir: Path, distributed_env: dict[str, str], workers) -> None:
    from relctl_core.db import Stage, session_scope
    from sqlalchemy import select

    workers.start("cpu,translate")
    workers.start("train.cpu")
    spec = write_spec(experiment_dir, 1e-3)
    spec.write_text(spec.read_text().replace("epochs: 1", "epochs: 500"))
    submitted = relctl("submit", str(spec), env=distributed_env)
    assert submitted.returncode == 0, submitted.stderr
    assert "relctl status 1" in submitted.stdout

    def training_child() -> int | None:
        with session_scope(distributed_env["RELCTL_DATABASE_URL"]) as session:
            stage = session.scalars(select(Stage).where(Stage.kind == "train", Stage.status == "running")).first()
            if stage is None or not (stage.progress or {}).get("step"):
                return None
            return stage.pid

    pid = wait_for(training_child, workers, "a training to make progress")
    os.killpg(pid, 0)  # the training's process group is alive

    cancelled = relctl("cancel", "1", env=distributed_env)
    assert cancelled.returncode == 0, cancelled.stderr

    def group_gone() -> bool:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(group_gone, workers, "the training's process group to end")
    status = relctl_json("status", "1", env=distributed_env)
    assert status["status"] == "cancelled"  # type: ignore[index]
    assert {s["status"] for s in status["stages"]} <= {"done", "cancelled"}  # type: ignore[index]
