"""One model for QC and QI (task: both): routed by heads, by heads and private top layers or by a task
prefix, scored per task beside the single-task runs, with F1avg."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.support import relctl
from tests.tiny_model import build_tiny_backbone

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "data"

SPEC = """\
name: {name}
task: {task}
data:
  qc: {{train: data/qc_train.jsonl, test: data/qc_test.jsonl, max_rows: 160}}
  qi: {{train: data/qi_train.jsonl, max_rows: 160}}
split: {{strategy: category-aware, folds: 4, train_folds: [0]}}
model: {{backbone: {backbone}, routing: {routing}}}
train: {{epochs: 1, batch_size: 16, max_length: 32, lr: 1.0e-3}}
baselines: {baselines}
"""


def _stage_rows(home: Path, experiment_id: int) -> list[tuple[str, str, dict]]:
    with sqlite3.connect(home / "relctl.db") as conn:
        rows = conn.execute("select kind, label, output from stages where experiment_id = ? order by id", (experiment_id,)).fetchall()
    return [(kind, label, json.loads(output or "{}")) for kind, label, output in rows]


def test_one_model_for_both_tasks_beside_the_single_task_runs(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    build_tiny_backbone(work / "tiny", [work / "data" / "qc_train.jsonl", work / "data" / "qi_train.jsonl"])
    home = Path(relctl_env["RELCTL_HOME"])
    spec = SPEC.format(name="tasks", task="qc", backbone=work / "tiny", routing="heads", baselines="true")
    (work / "tasks.yaml").write_text(spec + "sweep: {task: [qc, qi, both]}\n")

    done = relctl("run", "tasks.yaml", "--json", env=relctl_env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    board = json.loads(relctl("leaderboard", "--json", env=relctl_env).stdout)
    models = sorted((row["run"], row["task"]) for row in board["rows"] if row["kind"] == "model")
    assert models == [("task=both", "QC"), ("task=both", "QI"), ("task=qc", "QC"), ("task=qi", "QI")]
    assert all(row["folds"] == 1 and row["mean"] is not None for row in board["rows"])
    # F1avg: the model for both tasks on its own, the pair of single-task runs on theirs.
    assert sorted(a["run"] for a in board["f1avg"] if not a["run"].startswith("baseline")) == ["task=both", "tasks"]
    qc_only = json.loads(relctl("leaderboard", "--task", "qc", "--json", env=relctl_env).stdout)
    assert {row["task"] for row in qc_only["rows"]} == {"QC"} and "task=both" in {row["run"] for row in qc_only["rows"]}

    # The model for both tasks shares each task's folds with that task's runs: compared on QC with the
    # QC-only run and the QC baseline (it trains on both tasks' folds, which must not tell them apart).
    run_of = {(row["run"], row["task"]): row["run_id"] for row in board["rows"]}
    for other in ("task=qc", "baseline:all-relevant"):
        compared = relctl("compare", str(run_of[("task=both", "QC")]), str(run_of[(other, "QC")]), "--task", "qc", "--json", env=relctl_env)
        assert compared.returncode == 0, compared.stderr
        assert json.loads(compared.stdout)["rows"] > 0

    stages = _stage_rows(home, 1)
    both_trains = [output for kind, label, output in stages if kind == "train" and "task=both" in label]
    assert len(both_trains) == 1  # one training serves both tasks
    artifacts = both_trains[0]["artifacts"]
    assert {"oof:QC", "oof:QI", "test:QC"} <= artifacts.keys() and "test:QI" not in artifacts
    assert sorted(label for kind, label, _ in stages if kind == "evaluate" and "task=both" in label) == [
        "evaluate task=both QC", "evaluate task=both QI",
    ]  # fmt: skip
    card = json.loads((home / "artifacts" / artifacts["model"] / "relevance_model.json").read_text())
    assert card["tasks"] == ["QC", "QI"] and card["head_outputs"] == 2
    rows = [json.loads(line) for line in (home / "artifacts" / artifacts["model"]).parent.parent.joinpath("inputs", "train.jsonl").read_text().splitlines()]
    assert {row["task"] for row in rows} == {"QC", "QI"}
    qc_oof = [json.loads(line) for line in (home / "artifacts" / artifacts["oof:QC"]).read_text().splitlines()]
    assert qc_oof and {row["task"] for row in qc_oof} == {"QC"}

    # Routing by prefix: one head, and the query says which task it is.
    prefixed = SPEC.format(name="prefix", task="both", backbone=work / "tiny", routing="prefix", baselines="false")
    (work / "prefix.yaml").write_text(prefixed)
    done = relctl("run", "prefix.yaml", "--json", env=relctl_env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(row["task"] for row in json.loads(done.stdout)["rows"]) == ["QC", "QI"]
    [train] = [output for kind, _label, output in _stage_rows(home, 2) if kind == "train"]
    card = json.loads((home / "artifacts" / train["artifacts"]["model"] / "relevance_model.json").read_text())
    assert card["tasks"] == [] and card["head_outputs"] == 1
    rows = [json.loads(line) for line in (home / "artifacts" / train["artifacts"]["model"]).parent.parent.joinpath("inputs", "train.jsonl").read_text().splitlines()]
    assert all(row["query_text"].startswith("category: " if row["task"] == "QC" else "item: ") for row in rows)

    # Routing heads+private: a head and the top layer of the backbone for each task.
    private = SPEC.format(
        name="private", task="both", backbone=work / "tiny", routing="heads+private, private_layers: 1", baselines="false"
    )
    (work / "private.yaml").write_text(private)
    done = relctl("run", "private.yaml", "--json", env=relctl_env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    private_rows = json.loads(done.stdout)["rows"]
    assert sorted(row["task"] for row in private_rows) == ["QC", "QI"] and all(row["mean"] is not None for row in private_rows)
    [train] = [output for kind, _label, output in _stage_rows(home, 3) if kind == "train"]
    model_dir = home / "artifacts" / train["artifacts"]["model"]
    card = json.loads((model_dir / "relevance_model.json").read_text())
    assert (card["tasks"], card["private_layers"]) == (["QC", "QI"], 1)
    assert (model_dir / "private_layers.safetensors").stat().st_size > 0
    private_run = private_rows[0]["run_id"]
    done = relctl("predict", str(private_run), "--task", "qi", "--input", str(work / "data" / "qi_test.jsonl"), "--output", str(tmp_path / "q.csv"), env=relctl_env)
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "q.csv").read_text().splitlines()) == 121

    # Predictions of the model for both tasks: the rows' task picks the head.
    both_run = next(row["run_id"] for row in board["rows"] if row["run"] == "task=both")
    missing = relctl("predict", str(both_run), "--input", str(work / "data" / "qc_test.jsonl"), "--output", str(tmp_path / "p.csv"), env=relctl_env)
    assert missing.returncode == 2 and "--task qc or --task qi" in missing.stderr
    done = relctl("predict", str(both_run), "--task", "qc", "--input", str(work / "data" / "qc_test.jsonl"), "--output", str(tmp_path / "p.csv"), env=relctl_env)
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 121
