"""Multi-GPU settings end to end: runs with resources.gpus 2 train with two data-parallel ranks under
torchrun and under DeepSpeed (ZeRO-3), here on the CPU (gloo), and land on the leaderboard."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from relctl_trainer.job import load_job

from tests.support import experiment_rows, relctl
from tests.tiny_model import build_tiny_backbone

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "data"

SPEC = """\
name: ranks
data:
  qc: {{train: data/qc_train.jsonl, max_rows: 160}}
split: {{strategy: category-aware, folds: 4, train_folds: [0]}}
model: {{backbone: {backbone}}}
train: {{epochs: 1, batch_size: 16, max_length: 32, lr: 1.0e-3}}
resources: {{gpu: a100, gpus: 2}}
baselines: false
sweep:
  resources: {sweep}
"""


def test_two_ranks_under_torchrun_and_deepspeed_from_an_experiment(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    build_tiny_backbone(work / "tiny", [work / "data" / "qc_train.jsonl"])
    home = Path(relctl_env["RELCTL_HOME"])

    # A ZeRO stage without DeepSpeed is refused before anything is written.
    bad = "[{gpu: a100, gpus: 2, zero_stage: 3}]"
    (work / "bad.yaml").write_text(SPEC.format(backbone=work / "tiny", sweep=bad))
    refused = relctl("run", "bad.yaml", env=relctl_env, cwd=work)
    assert refused.returncode == 2
    assert refused.stderr == "error: bad.yaml:10 sweep.resources[0].zero_stage: needs resources.launcher: deepspeed\n"
    assert experiment_rows(home) == 0

    good = "[{gpu: a100, gpus: 2}, {gpu: a100, gpus: 2, launcher: deepspeed, zero_stage: 3}]"
    (work / "ranks.yaml").write_text(SPEC.format(backbone=work / "tiny", sweep=good))
    done = relctl("run", "ranks.yaml", "--json", env=relctl_env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads(done.stdout)["rows"]
    assert len(rows) == 2 and all(row["mean"] is not None for row in rows)

    with sqlite3.connect(home / "relctl.db") as conn:
        trains = [json.loads(output) for (output,) in conn.execute("select output from stages where kind = 'train' order by id")]
    jobs = [load_job((home / "artifacts" / t["artifacts"]["model"]).parent / "job.json") for t in trains]
    assert [(job.processes, job.launcher, job.zero_stage) for job in jobs] == [(2, "torchrun", 2), (2, "deepspeed", 3)]
