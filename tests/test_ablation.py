"""An ablation in one experiment: `sweep_mode: each` varies one setting at a time from a base run, here
the target form of QC category paths and the split strategy, through `relctl run` and `relctl compare`."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.support import relctl
from tests.tiny_model import build_tiny_backbone

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "data"

SPEC = """\
name: ablation
task: qc
data:
  qc: {{train: data/qc_train.jsonl, max_rows: 150}}
split: {{strategy: category-aware, folds: 3, train_folds: [0, 1]}}
model: {{backbone: {backbone}, target_form: as-given}}
train: {{epochs: 1, batch_size: 16, max_length: 32}}
baselines: false
sweep_mode: each
sweep:
  model.target_form: [as-given, leaf-first]
  split.strategy: [random]
"""


def train_rows(home: Path, run_id: int) -> list[dict]:
    """The training rows one fold of a run was given, read from its train stage's inputs."""
    with sqlite3.connect(home / "relctl.db") as db:
        (key,) = db.execute("select cache_key from stages where run_id = ? and kind = 'train' order by id limit 1", (run_id,)).fetchone()
    lines = (home / "artifacts" / "train" / key / "inputs" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_an_ablation_runs_a_base_and_one_arm_per_changed_setting(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    build_tiny_backbone(work / "tiny", [work / "data" / "qc_train.jsonl"])
    (work / "experiment.yaml").write_text(SPEC.format(backbone=work / "tiny"))

    done = relctl("run", "experiment.yaml", "--json", env=relctl_env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    board = json.loads(done.stdout)
    runs = {r["run"]: r["run_id"] for r in board["rows"] if r["kind"] == "model" and r["language"] is None}
    # as-given is the file's own form: it is the base run, not an arm of its own.
    assert sorted(runs) == ["base", "strategy=random", "target_form=leaf-first"]

    home = Path(relctl_env["RELCTL_HOME"])
    base, leaf_first = train_rows(home, runs["base"]), train_rows(home, runs["target_form=leaf-first"])
    assert [r["id"] for r in base] == [r["id"] for r in leaf_first]  # the same rows of the same fold
    assert all("," in r["target_text"] and "(in:" not in r["target_text"] for r in base if r["target_text"].count(",") >= 1)
    for given, rewritten in zip(base, leaf_first, strict=True):
        *parents, leaf = given["target_text"].replace(", ", "\0").split(",")
        assert rewritten["target_text"] == (f"{leaf} (in: {' > '.join(parents)})" if parents else leaf).replace("\0", ", ")
        assert rewritten["query_text"] == given["query_text"]

    # The base and the target-form arm share their folds, so they pair up; the random split does not.
    paired = relctl("compare", str(runs["target_form=leaf-first"]), str(runs["base"]), "--metric", "roc_auc", "--json", "--resamples", "200", env=relctl_env)
    assert paired.returncode == 0, paired.stderr
    assert json.loads(paired.stdout)["verdict"] in ("A better", "B better", "no detectable difference")
    apart = relctl("compare", str(runs["strategy=random"]), str(runs["base"]), env=relctl_env)
    assert apart.returncode == 2 and "fold" in apart.stderr, apart.stderr
    with sqlite3.connect(home / "relctl.db") as db:
        splits = db.execute("select count(*) from stages where kind = 'split'").fetchone()[0]
    assert splits == 2  # category-aware for base and leaf-first, random for its arm
