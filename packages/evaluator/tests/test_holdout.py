"""Scores on the holdout fold: each fold model, their mean and their ensemble, checked against a
computation of their own from the predictions (scikit-learn's scores, thresholds by brute force)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from relctl_core.errors import InputError
from relctl_core.payloads import EvaluatePayload
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from relctl_evaluator import stats
from relctl_evaluator.holdout import holdout_records
from relctl_evaluator.stats import FixedRule, ScoredRows
from relctl_evaluator.tasks import OutOfFold, combine_probs

FOLDS = (0, 1, 3)  # fold 2 is the holdout
HOLDOUT = 2
RESAMPLES = 300


def brute_force_threshold(labels: np.ndarray, probs: np.ndarray) -> float:
    """The prob that maximises F1 when rows at or above it are called relevant; ties: nearest 0.5, then lower."""
    best: list[tuple[float, float]] = []
    for candidate in sorted(set(probs.tolist())):
        score = f1_score(labels, probs >= candidate, zero_division=0.0)
        best.append((score, candidate))
    top = max(score for score, _ in best)
    tied = [candidate for score, candidate in best if score == top]
    return min(tied, key=lambda c: (abs(c - 0.5), c))


class Rows:
    """Fold models' predictions, as train stages store them: out-of-fold rows of their own fold, and
    the same labelled holdout rows, with a query effect shared by a query's rows."""

    def __init__(self, root: Path, seed: int = 5, holdout_queries: int = 40) -> None:
        rng = np.random.default_rng(seed)
        self.root = root
        self.query = np.repeat(np.arange(holdout_queries), 3)
        n = self.query.size
        effect = rng.normal(0, 1.2, holdout_queries)[self.query]
        self.labels = ((effect + rng.normal(0, 0.8, n)) > 0).astype(int)
        self.languages = np.where(self.query % 3 == 0, "de", "en")
        self.ids = [f"h{i}" for i in range(n)]
        self.outputs: dict[int, dict[str, Any]] = {}
        self.holdout: dict[int, np.ndarray] = {}
        oof_ids, oof_labels, oof_probs, oof_folds, oof_languages = [], [], [], [], []
        for k, fold in enumerate(FOLDS):
            # Fold models calibrated differently (a shift per model), as small-data fold models are.
            shift = (-0.6, 0.0, 0.7)[k]
            signal = np.where(self.labels == 1, 1.2, -1.2)
            self.holdout[fold] = np.round(1 / (1 + np.exp(-(signal + shift + rng.normal(0, 1.1, n)))), 3)
            m = 45
            labels = rng.integers(0, 2, m)
            probs = np.round(1 / (1 + np.exp(-(np.where(labels == 1, 1.0, -1.0) + shift + rng.normal(0, 1.2, m)))), 3)
            oof_rows = [{"id": f"o{fold}-{i}", "language": "en", "label": int(label), "prob": float(prob)} for i, (label, prob) in enumerate(zip(labels, probs, strict=True))]
            holdout_rows = [
                {"id": i, "language": str(lang), "label": int(label), "prob": float(prob)}
                for i, lang, label, prob in zip(self.ids, self.languages, self.labels, self.holdout[fold], strict=True)
            ]
            holdout_rows = holdout_rows[k:] + holdout_rows[:k]  # each model's file in an order of its own
            self._write(f"oof{fold}.jsonl", oof_rows)
            self._write(f"holdout{fold}.jsonl", holdout_rows)
            self.outputs[fold] = {"fold": fold, "artifacts": {"oof": f"oof{fold}.jsonl", "holdout": f"holdout{fold}.jsonl"}}
            oof_ids += [r["id"] for r in oof_rows]
            oof_labels += labels.tolist()
            oof_probs += probs.tolist()
            oof_folds += [fold] * m
            oof_languages += ["en"] * m
        self.oof = OutOfFold(oof_ids, oof_labels, oof_probs, oof_folds, oof_languages)

    def _write(self, name: str, rows: list[dict[str, Any]]) -> None:
        (self.root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    def records(self, method: str) -> dict[tuple[str, int | None, str | None], Any]:
        payload = EvaluatePayload(task="QC", folds=list(FOLDS), combine=method, holdout_fold=HOLDOUT)
        query_of = {i: f"q{q}" for i, q in zip(self.ids, self.query, strict=True)}
        found = holdout_records(
            payload, [self.outputs], ["the run"], self.oof, lambda p: self.root / p, lambda ids: [query_of[i] for i in ids],
            combine=combine_probs, resamples=RESAMPLES,
        )  # fmt: skip
        return {(r.name, r.fold, r.language): r for r in found}

    def own_threshold(self, fold: int) -> float:
        rows = np.asarray(self.oof.folds) == fold
        return brute_force_threshold(np.asarray(self.oof.labels)[rows], np.asarray(self.oof.probs)[rows])

    def pooled_threshold(self) -> float:
        return brute_force_threshold(np.asarray(self.oof.labels), np.asarray(self.oof.probs))


def scores(labels: np.ndarray, ranked: np.ndarray, called: np.ndarray) -> dict[str, float]:
    return {
        "f1@0.5": f1_score(labels, ranked >= 0.5, zero_division=0.0),
        "f1@oof": f1_score(labels, called, zero_division=0.0),
        "roc_auc": roc_auc_score(labels, ranked),
        "pr_auc": average_precision_score(labels, ranked),
    }


@pytest.mark.parametrize("method", ["mean", "vote"])
def test_holdout_scores_equal_an_independent_computation_from_the_predictions(tmp_path: Path, method: str) -> None:
    rows = Rows(tmp_path)
    found = rows.records(method)
    labels = rows.labels
    per_model = {}
    for fold in FOLDS:
        threshold = rows.own_threshold(fold)
        assert found[("holdout.fold.threshold", fold, None)].value == threshold
        per_model[fold] = scores(labels, rows.holdout[fold], rows.holdout[fold] >= threshold)
    stacked = np.array([rows.holdout[f] for f in FOLDS])
    if method == "mean":
        ensemble = stacked.mean(axis=0)
        assert found[("holdout.ensemble.threshold", None, None)].value == rows.pooled_threshold()
        expected_ensemble = scores(labels, ensemble, ensemble >= rows.pooled_threshold())
    else:
        at_half = (stacked >= 0.5).mean(axis=0)
        own_votes = np.array([rows.holdout[f] >= rows.own_threshold(f) for f in FOLDS]).mean(axis=0)
        assert ("holdout.ensemble.threshold", None, None) not in found
        expected_ensemble = scores(labels, at_half, own_votes >= 0.5)
    for metric in ("f1@0.5", "f1@oof", "roc_auc", "pr_auc"):
        for fold in FOLDS:
            assert found[(f"holdout.fold.{metric}", fold, None)].value == pytest.approx(per_model[fold][metric], abs=1e-12), (metric, fold)
        single = np.mean([per_model[f][metric] for f in FOLDS])
        ensemble_score = found[(f"holdout.ensemble.{metric}", None, None)]
        single_score = found[(f"holdout.single.{metric}", None, None)]
        difference = found[(f"holdout.ensemble-single.{metric}", None, None)]
        assert ensemble_score.value == pytest.approx(expected_ensemble[metric], abs=1e-12), metric
        assert single_score.value == pytest.approx(single, abs=1e-12), metric
        assert single_score.std == pytest.approx(np.std([per_model[f][metric] for f in FOLDS], ddof=1), abs=1e-12)
        assert difference.value == pytest.approx(expected_ensemble[metric] - single, abs=1e-12), metric
        for record in (ensemble_score, single_score, difference):
            assert record.n == len(FOLDS)
            assert record.low is not None and record.high is not None and record.low <= record.value <= record.high, (record.name, record)
    # Per language: the same scores on the language's rows, at the same thresholds.
    german = rows.languages == "de"
    threshold = rows.own_threshold(0)
    expected = scores(labels[german], rows.holdout[0][german], rows.holdout[0][german] >= threshold)
    for metric, value in expected.items():
        assert found[(f"holdout.fold.{metric}", 0, "de")].value == pytest.approx(value, abs=1e-12)
    assert found[("holdout.rows", None, None)].value == len(labels)
    assert found[("holdout.rows", None, "de")].value == int(german.sum())
    assert found[("holdout.positive_rate", None, None)].value == pytest.approx(labels.mean())


def test_no_threshold_is_tuned_on_the_holdout_rows(tmp_path: Path) -> None:
    # Flipping the holdout labels changes every score but no threshold: those come from out-of-fold rows.
    rows = Rows(tmp_path)
    before = rows.records("mean")
    rows.labels = 1 - rows.labels
    for fold in FOLDS:
        lines = [json.loads(line) for line in (tmp_path / f"holdout{fold}.jsonl").read_text().splitlines()]
        rows._write(f"holdout{fold}.jsonl", [{**r, "label": 1 - r["label"]} for r in lines])
    after = rows.records("mean")
    thresholds = [key for key in before if key[0].endswith(".threshold")]
    assert len(thresholds) == len(FOLDS) + 1
    assert all(before[key].value == after[key].value for key in thresholds)
    assert before[("holdout.ensemble.roc_auc", None, None)].value == pytest.approx(1 - after[("holdout.ensemble.roc_auc", None, None)].value)


def test_fold_models_that_predicted_other_rows_are_refused(tmp_path: Path) -> None:
    rows = Rows(tmp_path)
    lines = (tmp_path / "holdout1.jsonl").read_text().splitlines()
    (tmp_path / "holdout1.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match="predicted other holdout rows"):
        rows.records("mean")
    rows = Rows(tmp_path)
    del rows.outputs[3]["artifacts"]["holdout"]
    with pytest.raises(InputError, match="no predictions of the holdout fold 2 in fold 3"):
        rows.records("mean")


def test_fixed_rule_intervals_score_at_the_given_threshold_and_pair_their_contrasts() -> None:
    rng = np.random.default_rng(11)
    query = np.repeat(np.arange(60), 2)
    labels = rng.integers(0, 2, query.size)
    prob_a = np.round(rng.random(query.size) * 0.5 + labels * 0.4, 2)
    prob_b = np.round(rng.random(query.size), 2)
    scored = ScoredRows.of(labels, [7] * query.size, query)
    arms = {
        "a": [FixedRule("f1@oof", prob_a, 0.42), FixedRule("roc_auc", prob_a)],
        "b": [FixedRule("f1@oof", prob_b, 0.3), FixedRule("roc_auc", prob_b)],
        "a again": [FixedRule("f1@oof", prob_a, 0.42), FixedRule("roc_auc", prob_a)],
    }
    contrasts = {"a-b": {"a": 1.0, "b": -1.0}, "a-a": {"a": 1.0, "a again": -1.0}, "only f1": {"a": 1.0, "missing": 1.0}}
    found = stats.fixed_rule_intervals(scored, arms, contrasts, resamples=RESAMPLES)
    assert found["a"]["f1@oof"][None].value == pytest.approx(f1_score(labels, prob_a >= 0.42))
    assert found["b"]["f1@oof"][None].value == pytest.approx(f1_score(labels, prob_b >= 0.3))
    assert found["a"]["roc_auc"][None].value == pytest.approx(roc_auc_score(labels, prob_a))
    difference = found["a-b"]["roc_auc"][None]
    assert difference.value == pytest.approx(roc_auc_score(labels, prob_a) - roc_auc_score(labels, prob_b))
    assert difference.low <= difference.value <= difference.high
    # Paired: an arm less itself is zero on every resample.
    assert (found["a-a"]["f1@oof"][None].low, found["a-a"]["f1@oof"][None].high) == (0.0, 0.0)
    assert "only f1" not in found  # a contrast of an arm that does not exist has no score
    assert not math.isnan(found["a"]["f1@oof"][None].low)


def test_fixed_rules_resample_as_the_cross_validation_intervals_do() -> None:
    # At 0.5 and for the AUCs, nothing is tuned: the batched fixed-rule scores must match intervals()
    # draw for draw, over several folds and per language.
    rng = np.random.default_rng(4)
    query = np.repeat(np.arange(90), 3)
    labels = (rng.normal(0, 1, 90)[query] + rng.normal(0, 0.5, query.size)) > 0
    prob = np.round(1 / (1 + np.exp(-(np.where(labels, 1.0, -1.0) + rng.normal(0, 1.2, query.size)))), 2)
    languages = np.where(query % 4 == 0, "fr", "en")
    scored = ScoredRows.of(labels.astype(int), query % 3, query, languages)
    metrics = ("f1@0.5", "precision@0.5", "recall@0.5", "roc_auc", "pr_auc")
    expected = stats.metric_intervals(metrics, scored, prob, by_language=True, resamples=RESAMPLES, seed=9)
    found = stats.fixed_rule_intervals(scored, {"run": [FixedRule(m, prob) for m in metrics]}, by_language=True, resamples=RESAMPLES, seed=9)
    for metric in metrics:
        for subset in (None, "en", "fr"):
            want, got = expected[metric][subset], found["run"][metric][subset]
            assert (got.value, got.low, got.high) == pytest.approx((want.value, want.low, want.high), abs=1e-12), (metric, subset)
