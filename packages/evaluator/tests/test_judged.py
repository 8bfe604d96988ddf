"""The judged board on synthetic runs: intervals, the best run and who is told apart from it, and
whether each model beats the better of the two baselines."""

from __future__ import annotations

import numpy as np
import pytest
from relctl_core.errors import InputError

from relctl_evaluator.compare import RunRows
from relctl_evaluator.judged import Contender, judge
from relctl_evaluator.stats import cv_score

RESAMPLES = 300
SPLIT = ("dataset-hash", "folds-hash")


def _labels(queries: int = 160, seed: int = 1) -> tuple[np.ndarray, list[int], list[str], list[str]]:
    """Two rows per query, queries spread over two folds, 70 % relevant."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(2 * queries) < 0.7).astype(int)
    folds = [q % 2 for q in range(queries) for _ in range(2)]
    names = [f"query {q}" for q in range(queries) for _ in range(2)]
    languages = ["de" if q % 3 else "fr" for q in range(queries) for _ in range(2)]
    return labels, folds, names, languages


def _contender(run_id: int, name: str, kind: str, probs: np.ndarray, *, baseline: str | None = None, split: tuple[str, ...] = SPLIT) -> Contender:
    labels, folds, queries, languages = _labels()
    rows = RunRows(
        run_id=run_id, name=name, task="QC", split=split, ids=[str(i) for i in range(labels.size)], labels=labels.tolist(),
        probs=[float(p) for p in probs], folds=folds, languages=languages, queries=queries,
    )  # fmt: skip
    return Contender(rows=rows, kind=kind, baseline=baseline, mode="orig" if kind == "model" else None)


def _runs() -> dict[str, Contender]:
    labels = _labels()[0]
    rng = np.random.default_rng(7)
    strong = np.clip(0.25 + 0.5 * labels + rng.normal(0, 0.12, labels.size), 0, 1)
    return {
        "strong": _contender(1, "strong", "model", strong),
        # The strong model, barely moved: a paired comparison cannot tell the two apart.
        "twin": _contender(2, "twin", "model", np.clip(strong + rng.normal(0, 0.002, labels.size), 0, 1)),
        "guess": _contender(3, "guess", "model", rng.random(labels.size)),
        "all": _contender(4, "baseline:all-relevant", "baseline", np.ones(labels.size), baseline="all-relevant"),
        "lexical": _contender(5, "baseline:lexical", "baseline", np.clip(0.5 + 0.1 * labels + rng.normal(0, 0.3, labels.size), 0, 1), baseline="lexical"),
    }


def _by_name(board: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {row["run"]: row for row in board}


def test_scores_are_the_cv_means_with_intervals_best_first() -> None:
    runs = _runs()
    board = judge(list(runs.values()), "f1@oof", resamples=RESAMPLES)
    assert [row["rank"] for row in board] == [1, 2, 3, 4, 5]
    values = [row["value"] for row in board]
    assert values == sorted(values, reverse=True)
    for row in board:
        rows = next(c.rows for c in runs.values() if c.rows.run_id == row["run_id"])
        expected = cv_score("f1@oof", np.array(rows.labels, dtype=bool), np.array(rows.probs), np.array(rows.folds))
        assert row["value"] == pytest.approx(expected, abs=1e-12)
        assert row["low"] <= row["high"]
        assert (row["rows"], row["queries"], row["folds"], row["resamples"]) == (320, 160, [0, 1], RESAMPLES)


def test_marks_against_the_best_and_the_better_baseline() -> None:
    board = _by_name(judge(list(_runs().values()), "f1@oof", resamples=RESAMPLES))
    strong, twin, guess = board["strong"], board["twin"], board["guess"]
    best = strong if strong["best"] else twin
    assert best["rank"] == 1 and best["tied_with_best"] and best["vs_best"] is None
    assert sum(bool(row["best"]) for row in board.values()) == 1
    # The twin is not told apart from the best; a guess is.
    other = twin if best is strong else strong
    assert other["tied_with_best"] and other["vs_best"]["low"] <= 0 <= other["vs_best"]["high"]
    assert not guess["tied_with_best"] and guess["vs_best"]["high"] < 0 and guess["vs_best"]["run_id"] == best["run_id"]

    # "All relevant" scores the better F1 of the two baselines here, so the models are held to it.
    assert board["baseline:all-relevant"]["value"] > board["baseline:lexical"]["value"]
    for row in (strong, twin, guess):
        assert row["vs_baseline"]["baseline"] == "all-relevant" and row["vs_baseline"]["run_id"] == 4
    assert strong["beats_baseline"] is True and strong["vs_baseline"]["low"] > 0
    assert strong["note"].startswith("beats the better baseline (all relevant)")
    assert guess["beats_baseline"] is False
    assert guess["note"].startswith("has not beaten the better baseline (all relevant)")
    # Baselines are not judged against themselves.
    assert board["baseline:lexical"]["vs_baseline"] is None and board["baseline:lexical"]["beats_baseline"] is None


def test_a_model_the_baseline_is_not_told_apart_from_has_not_beaten_it() -> None:
    runs = _runs()
    labels = _labels()[0]
    rng = np.random.default_rng(3)
    # Barely informative: its F1 cannot be told apart from answering "relevant" everywhere.
    near = _contender(6, "near", "model", np.clip(0.9 + 0.02 * labels + rng.normal(0, 0.05, labels.size), 0, 1))
    row = _by_name(judge([near, runs["all"], runs["lexical"]], "f1@oof", resamples=RESAMPLES))["near"]
    assert row["beats_baseline"] is False
    assert row["vs_baseline"]["low"] <= 0 <= row["vs_baseline"]["high"]
    assert "has not beaten the better baseline" in row["note"] and "no detectable difference" in row["note"]


def test_the_better_baseline_depends_on_the_metric() -> None:
    # Ranking by ROC-AUC, "all relevant" scores 0.5 and the lexical baseline is the one to beat.
    board = _by_name(judge(list(_runs().values()), "roc_auc", resamples=RESAMPLES))
    assert board["baseline:all-relevant"]["value"] == pytest.approx(0.5)
    assert board["strong"]["vs_baseline"]["baseline"] == "lexical"


def test_runs_split_differently_are_judged_apart() -> None:
    runs = _runs()
    labels = _labels()[0]
    other = _contender(9, "other split", "model", np.clip(0.3 + 0.4 * labels, 0, 1), split=("dataset-hash", "other-folds"))
    board = _by_name(judge([*runs.values(), other], "f1@oof", resamples=RESAMPLES))
    row = board["other split"]
    assert row["group"] == 1 and row["rank"] == 1 and row["best"]
    # Alone on its folds: no baseline to hold it to, and it says so.
    assert row["beats_baseline"] is None and row["note"] == "no baseline was scored on these folds"
    assert {board[name]["group"] for name in ("strong", "guess", "baseline:lexical")} == {0}


def test_an_unknown_metric_is_bad_input() -> None:
    with pytest.raises(InputError, match="valid: f1@oof"):
        judge(list(_runs().values()), "threshold@oof")
