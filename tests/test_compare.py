"""`relctl compare` on finished runs: the scores it compares are the run database's, its interval and
verdict agree, a run's rows are resampled by their queries, and runs of other folds are refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.finished import other_split_run
from tests.support import relctl


def _cv_metric(home: Path, run_id: int, name: str, language: str | None = None) -> float:
    with sqlite3.connect(home / "relctl.db") as conn:
        query = "select value from metrics where run_id = ? and name = ? and fold is null and " + ("language = ?" if language else "language is null")
        [(value,)] = conn.execute(query, (run_id, name, *([language] if language else []))).fetchall()
    return value


def _oof_rows(home: Path, run_id: int) -> list[dict[str, object]]:
    """The run's out-of-fold rows, each with its fold."""
    with sqlite3.connect(home / "relctl.db") as conn:
        outputs = [json.loads(o) for (o,) in conn.execute("select output from stages where run_id = ? and kind in ('train', 'baseline')", (run_id,))]
    return [
        {**json.loads(line), "fold": output["fold"]}
        for output in outputs
        for line in (home / "artifacts" / output["artifacts"]["oof"]).read_text().splitlines()
    ]


def _query_groups(home: Path, rows: list[dict[str, object]]) -> set[tuple[object, str]]:
    """(fold, query) of the rows: the units the bootstrap resamples (a query the category-aware split
    left in two folds is resampled in each)."""
    with sqlite3.connect(home / "relctl.db") as conn:
        [(output,)] = conn.execute("select output from stages where kind = 'ingest' and experiment_id = 1").fetchall()
    dataset = [json.loads(line) for line in (home / "artifacts" / json.loads(output)["artifacts"]["train"]).read_text().splitlines()]
    query_of = {row["id"]: row["query"] for row in dataset}
    return {(row["fold"], query_of[row["id"]]) for row in rows}


def test_compare_prints_the_difference_its_interval_and_a_verdict(finished_sweep) -> None:
    from relctl_evaluator.stats import verdict

    env, run_ids, _ = finished_sweep
    home = Path(env["RELCTL_HOME"])
    model, everything = run_ids["r=2"], run_ids["baseline:all-relevant"]
    done = relctl("compare", str(model), str(everything), "--by", "language", "--json", "--resamples", "400", "--permutations", "400", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert (result["a"]["run_id"], result["b"]["run_id"], result["task"], result["metric"]) == (model, everything, "QC", "f1@oof")
    assert (result["a"]["run"], result["b"]["run"]) == ("r=2", "baseline:all-relevant")
    # The scores compared are the leaderboard's (the run database's CV means), and the difference is theirs.
    a, b = _cv_metric(home, model, "f1@oof"), _cv_metric(home, everything, "f1@oof")
    assert result["a"]["score"] == pytest.approx(a, abs=1e-12) and result["b"]["score"] == pytest.approx(b, abs=1e-12)
    assert result["difference"] == pytest.approx(a - b, abs=1e-12)
    assert result["low"] <= result["high"] and result["verdict"] == verdict(result["low"], result["high"])
    assert 0 < result["p_value"] <= 1 and result["resamples"] == 400
    # Resampled by query: the rows are the out-of-fold rows of both folds, grouped by their queries.
    rows = _oof_rows(home, model)
    assert result["rows"] == len(rows) and result["queries"] == len(_query_groups(home, rows))
    assert result["queries"] < result["rows"]
    # Per language, each score is the run database's per-language CV mean.
    languages = {r["language"] for r in rows}
    assert set(result["languages"]) == languages
    for language, found in result["languages"].items():
        assert found["a"] == pytest.approx(_cv_metric(home, model, "f1@oof", language), abs=1e-12), language
        assert found["b"] == pytest.approx(_cv_metric(home, everything, "f1@oof", language), abs=1e-12), language
        assert found["verdict"] == verdict(found["low"], found["high"])

    # For people: both runs named, the interval and the verdict.
    shown = relctl("compare", str(model), str(everything), "--metric", "roc_auc", "--resamples", "200", "--permutations", "200", env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"A: run {model} r=2" in shown.stdout and "A minus B" in shown.stdout
    assert "roc_auc" in shown.stdout and any(v in shown.stdout for v in ("A better", "B better", "no detectable difference"))
    # "all relevant" ranks nothing: its ROC-AUC is 0.5, so the difference is the model's AUC less 0.5.
    again = json.loads(relctl("compare", str(model), str(everything), "--metric", "roc_auc", "--json", "--resamples", "200", env=env).stdout)
    assert again["b"]["score"] == pytest.approx(0.5) and again["difference"] == pytest.approx(_cv_metric(home, model, "roc_auc") - 0.5)


def test_the_same_seed_gives_the_same_answer(finished_sweep) -> None:
    env, run_ids, _ = finished_sweep
    args = ("compare", str(run_ids["r=2"]), str(run_ids["r=4"]), "--json", "--resamples", "200", "--permutations", "100", "--seed", "3")
    first, second = relctl(*args, env=env), relctl(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)


def test_runs_that_do_not_share_their_folds_and_bad_arguments_exit_2(finished_sweep) -> None:
    env, run_ids, _ = finished_sweep
    model = run_ids["r=2"]
    for args, message in [
        ([model, other_split_run(finished_sweep)], "do not share their folds"),
        ([model, model], "two different runs"),
        ([model, 999], "no run 999"),
        ([model, run_ids["r=4"], "--metric", "threshold@oof"], "valid: f1@oof"),
        ([model, run_ids["r=4"], "--task", "qi"], "not scored on QI"),
    ]:
        done = relctl("compare", *map(str, args), env=env)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)


def test_the_leaderboard_interval_is_the_query_grouped_bootstrap_of_the_runs_rows(finished_sweep) -> None:
    """The evaluator stores each CV mean's interval as `relctl compare` resamples: by query, within
    each fold, the same 2,000 draws; the board shows it, overall and per language."""
    from relctl_core.db import session_scope
    from relctl_core.settings import load_settings
    from relctl_evaluator.compare import read_run_rows
    from relctl_evaluator.stats import ScoredRows, intervals

    env, run_ids, _ = finished_sweep
    board = json.loads(relctl("leaderboard", "--experiment", "1", "--by", "language", "--json", env=env).stdout)
    overall = json.loads(relctl("leaderboard", "--experiment", "1", "--json", env=env).stdout)
    model = run_ids["r=4"]
    settings = load_settings(env)
    with session_scope(settings.database_url) as session:
        rows = read_run_rows(session, settings, model, "QC")
    scored = ScoredRows.of(rows.labels, rows.folds, rows.queries, rows.languages)
    expected = intervals("f1@oof", scored, rows.probs, by_language=True)
    shown = {r["language"]: r for r in board["rows"] + overall["rows"] if r["run_id"] == model}
    assert set(shown) == set(expected)
    for language, interval in expected.items():
        row = shown[language]
        assert row["mean"] == pytest.approx(interval.value, abs=1e-12), language
        if row["low"] is None:  # a language whose resamples never score (too few rows in a fold)
            assert interval.low != interval.low
            continue
        assert (row["low"], row["high"]) == (pytest.approx(interval.low, abs=1e-12), pytest.approx(interval.high, abs=1e-12)), language


def test_one_experiments_board_marks_each_run_against_the_best_and_the_better_baseline(finished_sweep) -> None:
    env, run_ids, _ = finished_sweep
    done = relctl("leaderboard", "--experiment", "1", "--json", env=env)
    assert done.returncode == 0, done.stderr
    rows = {r["run_id"]: r for r in json.loads(done.stdout)["rows"]}
    marks = {run_id: row["marks"] for run_id, row in rows.items()}
    assert all(m is not None for m in marks.values()), marks
    best = [run_id for run_id, m in marks.items() if m["best"]]
    assert best == [max(rows, key=lambda run_id: (rows[run_id]["mean"], -run_id))]  # the board's top row
    # Each model against the better baseline is `relctl compare` of the two (same resamples, same seed).
    for name in ("r=2", "r=4"):
        against = marks[run_ids[name]]["vs_baseline"]
        baseline = run_ids[f"baseline:{against['baseline']}"]
        compared = json.loads(relctl("compare", str(run_ids[name]), str(baseline), "--permutations", "0", "--json", env=env).stdout)
        assert (against["difference"], against["low"], against["high"]) == (
            pytest.approx(compared["difference"], abs=1e-12), pytest.approx(compared["low"], abs=1e-12), pytest.approx(compared["high"], abs=1e-12)
        )
        assert marks[run_ids[name]]["beats_baseline"] == (compared["verdict"] == "A better")
    shown = relctl("leaderboard", "--experiment", "1", env={**env, "COLUMNS": "250"})
    assert "vs the better baseline" in shown.stdout and "best" in shown.stdout
    plain = json.loads(relctl("leaderboard", "--experiment", "1", "--no-marks", "--json", env=env).stdout)
    assert all("marks" not in r for r in plain["rows"])
