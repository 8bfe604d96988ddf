"""split.holdout_fold end to end: `relctl run` (embedded) keeps a fold out of cross-validation, every
fold model and baseline predicts it, and `relctl show` holds each run's holdout scores, which equal
a computation of their own from the stored predictions."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from tests.support import relctl
from tests.tiny_model import build_tiny_backbone

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "data"
HOLDOUT = 3

SPEC = """\
name: holdout
data:
  qc: {{train: data/qc_train.jsonl, test: data/qc_test.jsonl, max_rows: 240}}
split: {{strategy: category-aware, folds: 4, train_folds: all, holdout_fold: {holdout}}}
model: {{backbone: {backbone}}}
train: {{epochs: 1, batch_size: 16, max_length: 32, lr: 1.0e-3}}
ensemble: {{method: mean}}
"""


def stages(home: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "relctl.db") as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("select id, run_id, kind, label, config, output from stages order by id").fetchall()
    return [{**dict(row), "config": json.loads(row["config"]), "output": json.loads(row["output"] or "null")} for row in rows]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def brute_force_threshold(labels: np.ndarray, probs: np.ndarray) -> float:
    """The prob that maximises F1 when rows at or above it are called relevant; ties: nearest 0.5, then lower."""
    scored = [(f1_score(labels, probs >= c, zero_division=0.0), c) for c in sorted(set(probs.tolist()))]
    top = max(score for score, _ in scored)
    return min((c for score, c in scored if score == top), key=lambda c: (abs(c - 0.5), c))


def scores(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict[str, float]:
    return {
        "f1@0.5": f1_score(labels, probs >= 0.5, zero_division=0.0),
        "f1@oof": f1_score(labels, probs >= threshold, zero_division=0.0),
        "roc_auc": roc_auc_score(labels, probs),
        "pr_auc": average_precision_score(labels, probs),
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    from tests.conftest import model_store

    work = tmp_path_factory.mktemp("holdout")
    env = {"RELCTL_HOME": str(work / "home"), "RELCTL_MODEL_STORE": str(model_store())}
    shutil.copytree(DEMO, work / "data")
    build_tiny_backbone(work / "tiny", [work / "data" / "qc_train.jsonl"])
    (work / "experiment.yaml").write_text(SPEC.format(backbone=work / "tiny", holdout=HOLDOUT))
    done = relctl("run", "experiment.yaml", "--json", env=env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return env, work


def test_no_fold_model_trains_or_validates_on_a_holdout_row_and_each_predicts_all_of_them(finished: tuple[dict[str, str], Path]) -> None:
    env, work = finished
    home = Path(env["RELCTL_HOME"])
    found = stages(home)
    split = next(s for s in found if s["kind"] == "split")
    fold_of_row = json.loads((home / "artifacts" / split["output"]["artifacts"]["folds"]).read_text())
    holdout_ids = {row_id for row_id, fold in fold_of_row.items() if fold == HOLDOUT}
    assert holdout_ids
    trains = [s for s in found if s["kind"] == "train"]
    assert sorted(s["config"]["fold"] for s in trains) == [0, 1, 2]  # train_folds: all, less the holdout
    for stage in trains + [s for s in found if s["kind"] == "baseline"]:
        artifacts = stage["output"]["artifacts"]
        predicted = read_jsonl(home / "artifacts" / artifacts["holdout"])
        assert {row["id"] for row in predicted} == holdout_ids and len(predicted) == len(holdout_ids), stage["label"]
        assert all(row["label"] in (0, 1) for row in predicted)
        oof = {row["id"] for row in read_jsonl(home / "artifacts" / artifacts["oof"])}
        assert oof == {row_id for row_id, fold in fold_of_row.items() if fold == stage["config"]["fold"]}
        # The unlabelled test file is predicted as before, beside the holdout (its ids may repeat training ids).
        test_ids = [str(row["id"]) for row in read_jsonl(work / "data" / "qc_test.jsonl")]
        assert [str(row["id"]) for row in read_jsonl(home / "artifacts" / artifacts["test"])] == test_ids
    for stage in trains:
        inputs = Path(home / "artifacts" / stage["output"]["artifacts"]["model"]).parent.parent / "inputs"
        trained = {row["id"] for row in read_jsonl(inputs / "train.jsonl")}
        validated = {row["id"] for row in read_jsonl(inputs / "val.jsonl")}
        assert not trained & holdout_ids and not validated & holdout_ids, stage["label"]
        assert trained | validated | holdout_ids == set(fold_of_row)


def test_show_holds_the_holdout_scores_of_the_model_and_the_baselines(finished: tuple[dict[str, str], Path]) -> None:
    env, _ = finished
    shown = relctl("show", "1", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    holdout = {entry["run"]: entry for entry in json.loads(shown.stdout)["holdout"]}
    assert sorted(holdout) == ["baseline:all-relevant", "baseline:lexical", "holdout"]
    for name, entry in holdout.items():
        assert entry["holdout_fold"] == HOLDOUT and entry["task"] == "QC" and entry["rows"] > 0
        assert sorted(entry["thresholds"]["folds"]) == ["0", "1", "2"]  # JSON keys: the fold models'
        assert entry["thresholds"]["ensemble"] is not None  # ensemble.method mean: the pooled out-of-fold threshold
        for metric in ("f1@oof", "f1@0.5", "roc_auc", "pr_auc"):
            score = entry["scores"][metric]
            assert len(score["folds"]) == 3
            if name == "baseline:all-relevant" and metric == "roc_auc":
                assert score["ensemble"]["value"] == pytest.approx(0.5)  # every row tied
            for arm in ("single", "ensemble", "ensemble-single"):
                assert score[arm]["value"] is not None, (name, metric, arm)
                assert score[arm]["low"] <= score[arm]["value"] <= score[arm]["high"], (name, metric, arm)
    text = relctl("show", "1", env=env).stdout
    assert "holdout fold 3" in text and "ensemble - one" in text


def test_the_holdout_scores_equal_a_computation_from_the_stored_predictions(finished: tuple[dict[str, str], Path]) -> None:
    env, _ = finished
    home = Path(env["RELCTL_HOME"])
    found = stages(home)
    runs = {entry["run"]: entry for entry in json.loads(relctl("show", "1", "--json", env=env).stdout)["holdout"]}
    for name, kind in (("holdout", "train"), ("baseline:lexical", "baseline")):
        run_id = runs[name]["run_id"]
        fold_stages = sorted((s for s in found if s["run_id"] == run_id and s["kind"] == kind), key=lambda s: s["config"]["fold"])
        per_fold, oof_rows = {}, {}
        for stage in fold_stages:
            per_fold[stage["config"]["fold"]] = {r["id"]: r for r in read_jsonl(home / "artifacts" / stage["output"]["artifacts"]["holdout"])}
            oof_rows[stage["config"]["fold"]] = read_jsonl(home / "artifacts" / stage["output"]["artifacts"]["oof"])
        ids = sorted(per_fold[0])
        labels = np.array([per_fold[0][i]["label"] for i in ids])
        expected_single: dict[str, list[float]] = {}
        for fold, rows in per_fold.items():
            oof = oof_rows[fold]
            threshold = brute_force_threshold(np.array([r["label"] for r in oof]), np.array([r["prob"] for r in oof]))
            assert runs[name]["thresholds"]["folds"][str(fold)] == pytest.approx(threshold, abs=1e-12)
            for metric, value in scores(labels, np.array([rows[i]["prob"] for i in ids]), threshold).items():
                assert runs[name]["scores"][metric]["folds"][str(fold)]["value"] == pytest.approx(value, abs=1e-9), (name, fold, metric)
                expected_single.setdefault(metric, []).append(value)
        every_oof = [r for rows in oof_rows.values() for r in rows]
        pooled = brute_force_threshold(np.array([r["label"] for r in every_oof]), np.array([r["prob"] for r in every_oof]))
        assert runs[name]["thresholds"]["ensemble"] == pytest.approx(pooled, abs=1e-12)
        mean = np.mean([[per_fold[fold][i]["prob"] for i in ids] for fold in per_fold], axis=0)
        for metric, value in scores(labels, mean, pooled).items():
            score = runs[name]["scores"][metric]
            assert score["ensemble"]["value"] == pytest.approx(value, abs=1e-9), (name, metric)
            assert score["single"]["value"] == pytest.approx(np.mean(expected_single[metric]), abs=1e-9), (name, metric)
            assert score["ensemble-single"]["value"] == pytest.approx(value - np.mean(expected_single[metric]), abs=1e-9), (name, metric)


def test_the_leaderboard_ranks_by_a_holdout_score(finished: tuple[dict[str, str], Path]) -> None:
    env, _ = finished
    board = relctl("leaderboard", "--experiment", "1", "--metric", "holdout.ensemble.f1@oof", "--json", env=env)
    assert board.returncode == 0, board.stderr
    rows = json.loads(board.stdout)["rows"]
    assert sorted(r["run"] for r in rows) == ["baseline:all-relevant", "baseline:lexical", "holdout"]
    assert all(r["low"] <= r["mean"] <= r["high"] for r in rows)
