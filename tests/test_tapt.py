"""TAPT: stage 1 on the other task's rows (a cached stage of its own, shared by runs), stage 2 continues it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.support import experiment_rows, relctl
from tests.tiny_model import build_tiny_backbone

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "data"

SPEC = """\
name: tapt
task: qc
data:
  qc: {{train: data/qc_train.jsonl, max_rows: 300}}
  qi: {{train: data/qi_train.jsonl}}   # all of it: enough queries shared with QC that stage 1 must hold some out
split: {{strategy: category-aware, folds: 4, train_folds: [0, 1]}}
model: {{backbone: {backbone}, lora: {{r: 4, alpha: 8}}}}
train:
  epochs: 1
  batch_size: 16
  max_length: 32
  tapt: {{aux_task: qi, epochs: 1, lr: 1.0e-3}}   # its own lr: stage 1 does not change with the train.lr sweep
baselines: false
sweep: {{train.lr: [1.0e-3, 2.0e-3]}}
"""


def test_tapt_trains_stage_one_once_per_fold_and_continues_it_in_every_run(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    build_tiny_backbone(work / "tiny", [work / "data" / "qc_train.jsonl", work / "data" / "qi_train.jsonl"])
    (work / "experiment.yaml").write_text(SPEC.format(backbone=work / "tiny"))

    done = relctl("run", "experiment.yaml", "--json", env=relctl_env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    board = json.loads(done.stdout)
    assert sorted(row["run"] for row in board["rows"]) == ["lr=0.001", "lr=0.002"]
    assert all(row["folds"] == 2 and row["mean"] is not None for row in board["rows"])

    home = Path(relctl_env["RELCTL_HOME"])
    with sqlite3.connect(home / "relctl.db") as conn:
        stages = {
            sid: (kind, label, json.loads(config), json.loads(deps), json.loads(output or "null"), queue)
            for sid, kind, label, config, deps, output, queue in conn.execute("select id, kind, label, config, depends_on, output, queue from stages")
        }
    pretrains = {sid: s for sid, s in stages.items() if s[0] == "pretrain"}
    trains = {sid: s for sid, s in stages.items() if s[0] == "train"}
    # One stage 1 per fold, shared by both learning rates of stage 2; it runs on the training queue.
    assert sorted(s[2]["fold"] for s in pretrains.values()) == [0, 1]
    assert {s[5] for s in pretrains.values()} == {"train.cpu"}
    assert len(trains) == 4
    for train in trains.values():
        [stage_one] = [dep for dep in train[3] if dep in pretrains]
        assert pretrains[stage_one][2]["fold"] == train[2]["fold"]
    ingests = sorted(s[1] for s in stages.values() if s[0] == "ingest")
    assert ingests == ["ingest QC", "ingest QI"]

    # Stage 1 never saw a query of the target fold's validation rows, and it held some out.
    fold_of_row = json.loads((home / "artifacts" / next(s for s in stages.values() if s[0] == "split")[4]["artifacts"]["folds"]).read_text())
    qc_rows = [json.loads(line) for line in (home / "artifacts" / next(s for s in stages.values() if s[1] == "ingest QC")[4]["artifacts"]["train"]).read_text().splitlines()]
    for _kind, _label, config, _deps, output, _queue in pretrains.values():
        val_queries = {r["query"] for r in qc_rows if fold_of_row[str(r["id"])] == config["fold"]}
        stage_one_rows = (home / "artifacts" / output["artifacts"]["model"]).parent.parent / "inputs" / "train.jsonl"
        queries = {json.loads(line)["query_text"] for line in stage_one_rows.read_text().splitlines()}
        assert queries and not queries & val_queries
        assert output["held_out"] > 0 and output["rows"] == len(stage_one_rows.read_text().splitlines())

    logs = relctl("logs", "1", env=relctl_env).stdout
    assert "TAPT stage 1 on QI for QC fold 0" in logs and "continuing the TAPT stage-1 model" in logs

    # A second experiment that changes only stage 2 re-uses every stage 1 from the cache.
    (work / "again.yaml").write_text(SPEC.format(backbone=work / "tiny").replace("[1.0e-3, 2.0e-3]", "[3.0e-3]"))
    again = relctl("run", "again.yaml", "--json", env=relctl_env, cwd=work)
    assert again.returncode == 0, again.stderr[-3000:]
    status = json.loads(relctl("status", "2", "--json", env=relctl_env).stdout)
    cached = {s["stage"].split()[0]: s["cached"] for s in status["stages"] if s["stage"].startswith(("pretrain", "train"))}
    assert cached == {"pretrain": True, "train": False}


def test_tapt_needs_the_other_tasks_data(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    spec = "".join(line for line in SPEC.format(backbone="multilingual-e5-small").splitlines(keepends=True) if not line.startswith("  qi:"))
    assert "qi_train" not in spec
    (work / "experiment.yaml").write_text(spec)
    done = relctl("validate", "experiment.yaml", env=relctl_env, cwd=work)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "data.qi: required by train.tapt.aux_task qi" in " ".join(done.stderr.split())
    (work / "experiment.yaml").write_text(spec.replace("aux_task: qi", "aux_task: qc"))
    done = relctl("run", "experiment.yaml", env=relctl_env, cwd=work)
    assert done.returncode == 2 and "train.tapt.aux_task: must be another task" in " ".join(done.stderr.split())
    assert experiment_rows(Path(relctl_env["RELCTL_HOME"])) == 0
