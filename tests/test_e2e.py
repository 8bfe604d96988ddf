"""End to end with the real multilingual-e5-small: `relctl run` on the demo data, the leaderboard, predict."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.support import relctl

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"

SPEC = """\
name: e2e
data:
  qc: {train: data/qc_train.jsonl, test: data/qc_test.jsonl, max_rows: 200}
  qi: {train: data/qi_train.jsonl, max_rows: 200}
translation: {enabled: true, backend: file, path: data/translations.tsv, mode: orig+en}
split: {folds: 4, train_folds: [0, 1]}
model: {backbone: multilingual-e5-small, lora: {r: 4, alpha: 8}}
train: {epochs: 1, lr: 5.0e-4, batch_size: 16, max_length: 48}
sweep: {task: [qc, qi]}
"""


@pytest.fixture
def real_model(relctl_env: dict[str, str], skip_or_fail) -> dict[str, str]:
    store = Path(relctl_env["RELCTL_MODEL_STORE"]) / "multilingual-e5-small"
    if not (store / "relctl-model.json").is_file():
        skip_or_fail(f"multilingual-e5-small is not installed in {store.parent} (relctl models install multilingual-e5-small)")
    return relctl_env


@pytest.mark.e2e
def test_run_trains_the_real_model_and_ranks_it_beside_the_baselines(tmp_path: Path, real_model: dict[str, str]) -> None:
    work = tmp_path / "exp"
    shutil.copytree(DEMO / "data", work / "data")
    (work / "experiment.yaml").write_text(SPEC)

    done = relctl("run", "experiment.yaml", "--json", env=real_model, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    board = json.loads(done.stdout)
    rows = {(r["run"], r["task"]): r for r in board["rows"]}
    for task in ("QC", "QI"):
        model = rows[(f"task={task.lower()}", task)]
        assert model["folds"] == 2 and 0.0 < model["mean"] <= 1.0 and 0.0 <= model["roc_auc"] <= 1.0
        assert rows[("baseline:all-relevant", task)]["roc_auc"] == pytest.approx(0.5)
        assert ("baseline:lexical", task) in rows
    assert {a["run"] for a in board["f1avg"]} >= {"baseline:lexical", "baseline:all-relevant"}
    assert len(board["f1avg"]) == 3

    shown = json.loads(relctl("show", "1", "--json", env=real_model).stdout)
    example = shown["example_inputs"][0]["query_text"]
    assert " - " in example, "orig+en inputs join the original and the English query"
    assert shown["translations"][0]["translated"] > 0

    run_id = next(r["run_id"] for r in board["rows"] if r["run"] == "task=qc")
    out = tmp_path / "submission.csv"
    predicted = relctl("predict", str(run_id), "--input", str(work / "data" / "qc_test.jsonl"), "--output", str(out), env=real_model)
    assert predicted.returncode == 0, predicted.stderr
    with out.open(encoding="utf-8") as rows_file:
        submission = list(csv.DictReader(rows_file))
    assert len(submission) == 120
    assert set(submission[0]) == {"id", "language", "query", "target", "prediction", "prob"}
    assert {row["prediction"] for row in submission} <= {"0", "1"}
    assert all(0.0 <= float(row["prob"]) <= 1.0 for row in submission)
