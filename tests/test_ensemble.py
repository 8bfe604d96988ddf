"""Ensembles: fold models' test predictions by mean or vote, and `relctl ensemble` over finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from tests.finished import other_split_run
from tests.support import relctl


@pytest.fixture(scope="module")
def finished(finished_sweep) -> tuple[dict[str, str], dict[str, int], Path]:
    return finished_sweep


def _prediction_files(home: Path, run_id: int, kind: str) -> dict[int, Path]:
    import sqlite3

    with sqlite3.connect(home / "relctl.db") as conn:
        rows = conn.execute("select config, output from stages where run_id = ? and kind = ?", (run_id, kind)).fetchall()
    return {json.loads(config).get("fold", -1): json.loads(output)["artifacts"] for config, output in rows}


def _probs(path: Path) -> dict[str, tuple[int | None, float]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {str(r["id"]): (r.get("label"), r["prob"]) for r in rows}


def test_fold_models_vote_on_the_test_rows(finished) -> None:
    env, run_ids, _ = finished
    home = Path(env["RELCTL_HOME"])
    artifacts = _prediction_files(home, run_ids["r=2"], "evaluate")[-1]
    votes = {i: prob for i, (_, prob) in _probs(home / "artifacts" / artifacts["test_predictions"]).items()}
    folds = _prediction_files(home, run_ids["r=2"], "train")
    fold_probs = [_probs(home / "artifacts" / folds[fold]["test"]) for fold in (0, 1)]
    # Each row's score is the share of the two fold models that call it relevant at 0.5.
    assert len(votes) == 120
    for row_id, share in votes.items():
        assert share == sum(probs[row_id][1] >= 0.5 for probs in fold_probs) / 2


def test_ensemble_of_two_runs_scores_their_mean_probability_on_the_same_folds(finished) -> None:
    env, run_ids, _ = finished
    home = Path(env["RELCTL_HOME"])
    done = relctl("ensemble", str(run_ids["r=2"]), str(run_ids["r=4"]), "--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    ensemble, *members = result["rows"]
    assert ensemble["kind"] == "ensemble" and ensemble["run"] == f"ensemble:{run_ids['r=2']}+{run_ids['r=4']}"
    assert [m["run_id"] for m in members] == [run_ids["r=2"], run_ids["r=4"]]

    # The evaluator's per-fold ROC-AUC is that of the members' mean out-of-fold probability.
    board = json.loads(relctl("leaderboard", "--experiment", str(result["experiment_id"]), "--json", env=env).stdout)
    assert [row["kind"] for row in board["rows"]] == ["ensemble"] and board["rows"][0]["folds"] == 2
    import sqlite3

    with sqlite3.connect(home / "relctl.db") as conn:
        fold_auc = dict(conn.execute("select fold, value from metrics where run_id = ? and name = 'roc_auc' and fold is not null and language is null", (ensemble["run_id"],)).fetchall())
    for fold in (0, 1):
        a = _probs(home / "artifacts" / _prediction_files(home, run_ids["r=2"], "train")[fold]["oof"])
        b = _probs(home / "artifacts" / _prediction_files(home, run_ids["r=4"], "train")[fold]["oof"])
        ids = sorted(a)
        labels = [a[i][0] for i in ids]
        mean = [(a[i][1] + b[i][1]) / 2 for i in ids]
        assert fold_auc[fold] == pytest.approx(roc_auc_score(labels, mean), abs=1e-9)
        # ... and not merely that of one member.
        assert fold_auc[fold] != pytest.approx(roc_auc_score(labels, [a[i][1] for i in ids]), abs=1e-9)

    # Its test predictions combine every member's fold models.
    test = _prediction_files(home, ensemble["run_id"], "evaluate")[-1]["test_predictions"]
    assert len(_probs(home / "artifacts" / test)) == 120

    voted = relctl("ensemble", str(run_ids["baseline:lexical"]), str(run_ids["r=2"]), str(run_ids["r=4"]), "--method", "vote", "--json", env=env)
    assert voted.returncode == 0, voted.stderr
    assert "ensemble:" in json.loads(voted.stdout)["rows"][0]["run"]
    assert "ensemble" in relctl("leaderboard", env=env).stdout

    # A baseline listed first: each fold still pairs every member's predictions of that fold's rows.
    mixed = relctl("ensemble", str(run_ids["baseline:lexical"]), str(run_ids["r=2"]), "--json", env=env)
    assert mixed.returncode == 0, mixed.stderr
    mixed_id = json.loads(mixed.stdout)["rows"][0]["run_id"]
    with sqlite3.connect(home / "relctl.db") as conn:
        mixed_auc = dict(conn.execute("select fold, value from metrics where run_id = ? and name = 'roc_auc' and fold is not null and language is null", (mixed_id,)).fetchall())
    for fold in (0, 1):
        lexical = _probs(home / "artifacts" / _prediction_files(home, run_ids["baseline:lexical"], "baseline")[fold]["oof"])
        model = _probs(home / "artifacts" / _prediction_files(home, run_ids["r=2"], "train")[fold]["oof"])
        assert lexical.keys() == model.keys()
        ids = sorted(model)
        mean = [(lexical[i][1] + model[i][1]) / 2 for i in ids]
        assert mixed_auc[fold] == pytest.approx(roc_auc_score([model[i][0] for i in ids], mean), abs=1e-9)


def test_bad_ensembles_are_bad_input(finished) -> None:
    env, run_ids, work = finished
    for args, message in [
        ([run_ids["r=2"]], "at least two different runs"),
        ([run_ids["r=2"], 999], "no run 999"),
    ]:
        done = relctl("ensemble", *map(str, args), env=env)
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr

    # Runs trained on another split hold other rows in each fold.
    done = relctl("ensemble", str(run_ids["r=2"]), str(other_split_run(finished)), env=env)
    assert done.returncode == 2 and "split differently" in done.stderr, done.stderr
