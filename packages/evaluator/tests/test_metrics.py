"""Positive-class metrics, the F1-maximising threshold, cross-fitted out-of-fold scoring and CV aggregates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from relctl_core.errors import InputError

from relctl_evaluator.metrics import (
    MetricRecord,
    best_f1_threshold,
    binary_metrics,
    f1avg,
    metric_names,
    score_out_of_fold,
)


def by_key(records: list[MetricRecord]) -> dict[tuple[int | None, str | None, str], MetricRecord]:
    keyed = {(record.fold, record.language, record.name): record for record in records}
    assert len(keyed) == len(records), "each (fold, language, name) must be recorded once"
    return keyed


def random_scored_rows(
    rows: int, folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray, list[int], list[str]]:
    """Rows whose probs carry some signal, spread over folds and three languages."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    probs = np.clip(0.3 * labels + rng.uniform(0.0, 0.7, rows), 0.0, 1.0).round(3)
    fold_of_row = [int(fold) for fold in rng.integers(0, folds, rows)]
    languages = [str(language) for language in rng.choice(["de", "en", "ja"], rows)]
    return labels, probs, fold_of_row, languages


def test_perfect_predictions_score_one() -> None:
    scores = binary_metrics([0, 0, 1, 1, 1], [0.1, 0.2, 0.7, 0.8, 0.9])
    assert scores == {
        "f1": 1.0,
        "precision": 1.0,
        "recall": 1.0,
        "roc_auc": 1.0,
        "pr_auc": 1.0,
        "positive_rate": 0.6,
        "rows": 5.0,
    }


def test_inverted_predictions_score_zero_and_rank_worst() -> None:
    scores = binary_metrics([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])
    assert (scores["f1"], scores["precision"], scores["recall"], scores["roc_auc"]) == (0.0, 0.0, 0.0, 0.0)
    # Positives ranked 3rd and 4th: precision 1/3 at recall 0.5, 2/4 at recall 1.
    assert scores["pr_auc"] == pytest.approx(0.5 * (1 / 3) + 0.5 * (2 / 4))


def test_hand_computed_scores_and_the_threshold_is_inclusive() -> None:
    labels = [1, 1, 1, 0, 0, 1, 0, 1]
    probs = [0.9, 0.6, 0.4, 0.7, 0.2, 0.5, 0.5, 0.3]
    # At 0.5 the two rows at exactly 0.5 are predicted relevant: TP 3, FP 2, FN 2.
    at_half = binary_metrics(labels, probs)
    assert at_half["precision"] == pytest.approx(3 / 5)
    assert at_half["recall"] == pytest.approx(3 / 5)
    assert at_half["f1"] == pytest.approx(3 / 5)
    # 8 positive-over-negative pairs and one tie (0.5 vs 0.5) out of 5 x 3.
    assert at_half["roc_auc"] == pytest.approx(8.5 / 15)
    assert at_half["positive_rate"] == pytest.approx(5 / 8)
    # At 0.55: TP 2, FP 1, FN 3.
    stricter = binary_metrics(labels, probs, threshold=0.55)
    assert stricter["precision"] == pytest.approx(2 / 3)
    assert stricter["recall"] == pytest.approx(2 / 5)
    assert stricter["f1"] == pytest.approx(2 * 2 / (3 + 5))


def test_auc_is_nan_with_one_class_while_thresholded_scores_stay_defined() -> None:
    only_relevant = binary_metrics([1, 1, 1], [0.2, 0.6, 0.9])
    assert math.isnan(only_relevant["roc_auc"]) and math.isnan(only_relevant["pr_auc"])
    assert only_relevant["recall"] == pytest.approx(2 / 3)
    only_irrelevant = binary_metrics([0, 0], [0.7, 0.1])
    assert math.isnan(only_irrelevant["roc_auc"]) and math.isnan(only_irrelevant["pr_auc"])
    assert (only_irrelevant["f1"], only_irrelevant["precision"], only_irrelevant["recall"]) == (0.0, 0.0, 0.0)


def test_all_relevant_f1_follows_from_the_positive_rate() -> None:
    labels = [1] * 68 + [0] * 32
    scores = binary_metrics(labels, np.ones(100))
    assert scores["f1"] == pytest.approx(2 * 0.68 / 1.68)
    assert scores["f1"] == pytest.approx(0.81, abs=0.005)


@pytest.mark.parametrize(
    ("labels", "probs", "threshold", "bad_path"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], 0.5, "labels[2]"),
        ([0, 1], [0.1, 1.5], 0.5, "probs[1]"),
        ([0, 1], [0.1, float("nan")], 0.5, "probs[1]"),
        ([0, 1, 1], [0.1, 0.2], 0.5, "probs"),
        ([], [], 0.5, "labels"),
        ([0, 1], [0.1, 0.9], float("nan"), "threshold"),
    ],
)
def test_bad_input_names_the_row_at_fault(
    labels: list[int], probs: list[float], threshold: float, bad_path: str
) -> None:
    with pytest.raises(InputError) as raised:
        binary_metrics(labels, probs, threshold)
    assert raised.value.path == bad_path


def test_best_threshold_on_a_hand_example() -> None:
    # F1 at each candidate: 0.9 -> 2/4, 0.8 -> 4/5, 0.7 -> 4/6, 0.6 -> 6/7, 0.1 -> 6/8.
    assert best_f1_threshold([1, 1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.1]) == 0.6


def test_best_threshold_matches_an_exhaustive_search() -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 300)
    probs = np.clip(0.25 * labels + rng.uniform(0, 0.75, 300), 0, 1).round(2)
    f1_at = {float(t): binary_metrics(labels, probs, float(t))["f1"] for t in np.unique(probs)}
    best = best_f1_threshold(labels, probs)
    assert f1_at[best] == pytest.approx(max(f1_at.values()), abs=1e-12)


def test_best_threshold_ties_go_to_the_one_closest_to_half_whatever_the_row_order() -> None:
    # 0.95 and 0.3 both give F1 2/3; 0.3 is closer to 0.5.
    labels = [1, 0, 0, 1]
    probs = [0.95, 0.7, 0.55, 0.3]
    assert best_f1_threshold(labels, probs) == 0.3
    assert best_f1_threshold(labels[::-1], probs[::-1]) == 0.3
    # No positives: every candidate scores 0, so the closest to 0.5 wins; of two equally close, the lower.
    assert best_f1_threshold([0, 0, 0, 0], [0.1, 0.45, 0.7, 0.58]) == 0.45
    assert best_f1_threshold([0, 0], [0.75, 0.25]) == 0.25


def test_f1avg_weighs_both_tasks_equally() -> None:
    assert f1avg(0.9, 0.8) == pytest.approx(0.85)


def test_every_fold_and_language_gets_every_metric_and_one_cv_aggregate() -> None:
    labels, probs, folds, languages = random_scored_rows(240, folds=3, seed=1)
    records = by_key(score_out_of_fold(labels=labels, probs=probs, folds=folds, languages=languages))
    per_group_names = [name for name in metric_names() if name != "threshold@oof.pooled"]
    for fold in (0, 1, 2, None):
        for language in (None, "de", "en", "ja"):
            assert [name for name in per_group_names if (fold, language, name) in records] == per_group_names
    assert records[(None, None, "threshold@oof.pooled")].value == best_f1_threshold(labels, probs)
    assert records[(None, None, "threshold@oof.pooled")].n == 240
    assert {record.fold for record in records.values()} == {0, 1, 2, None}


def test_oof_threshold_of_a_half_is_tuned_on_the_other_half_of_its_fold_only() -> None:
    labels, probs, folds, languages = random_scored_rows(300, folds=3, seed=2)
    fold_of_row = np.array(folds)
    before = by_key(score_out_of_fold(labels=labels, probs=probs, folds=folds, languages=languages))
    for fold in (0, 1, 2):
        rows = np.flatnonzero(fold_of_row == fold)
        halves = [best_f1_threshold(labels[half], probs[half]) for half in (rows[1::2], rows[::2])]
        assert before[(fold, None, "threshold@oof")].value == pytest.approx(np.mean(halves))

    # Make the even half of fold 0 say the opposite: the odd half's threshold (tuned on it) moves, the
    # threshold the even half is scored at does not, and no other fold moves.
    changed = probs.copy()
    even_half = np.flatnonzero(fold_of_row == 0)[::2]
    changed[even_half] = np.where(labels[even_half] == 1, 0.05, 0.95)
    after = by_key(score_out_of_fold(labels=labels, probs=changed, folds=folds, languages=languages))
    odd_half = np.flatnonzero(fold_of_row == 0)[1::2]
    assert best_f1_threshold(labels[odd_half], changed[odd_half]) == best_f1_threshold(labels[odd_half], probs[odd_half])
    assert after[(0, None, "threshold@oof")].value != before[(0, None, "threshold@oof")].value
    for fold in (1, 2):
        assert after[(fold, None, "threshold@oof")].value == before[(fold, None, "threshold@oof")].value
        assert after[(fold, None, "f1@oof")].value == before[(fold, None, "f1@oof")].value


def test_scores_at_the_oof_threshold_are_those_of_binary_metrics_at_it() -> None:
    labels, probs, folds, languages = random_scored_rows(300, folds=3, seed=3)
    records = by_key(score_out_of_fold(labels=labels, probs=probs, folds=folds, languages=languages))
    fold_rows = np.flatnonzero(np.array(folds) == 1)
    even, odd = fold_rows[::2], fold_rows[1::2]
    row_threshold = np.empty(len(probs))
    row_threshold[even] = best_f1_threshold(labels[odd], probs[odd])
    row_threshold[odd] = best_f1_threshold(labels[even], probs[even])
    rows = (np.array(folds) == 1) & (np.array(languages) == "ja")
    # A language is scored at its fold's thresholds, not ones tuned for it.
    assert records[(1, "ja", "threshold@oof")].value == records[(1, None, "threshold@oof")].value
    predicted = probs[rows] >= row_threshold[rows]
    truth = labels[rows] == 1
    true_positives = int(np.sum(predicted & truth))
    assert records[(1, "ja", "f1@oof")].value == pytest.approx(2 * true_positives / (predicted.sum() + truth.sum()))
    at_half = binary_metrics(labels[rows], probs[rows])
    for key in ("f1", "precision", "recall"):
        assert records[(1, "ja", f"{key}@0.5")].value == pytest.approx(at_half[key])
    for key in ("roc_auc", "pr_auc", "positive_rate", "rows"):
        assert records[(1, "ja", key)].value == pytest.approx(at_half[key])


def test_a_single_scored_fold_is_cross_fitted_in_two_halves() -> None:
    # Alternate rows form the halves. The even half is best cut at 0.8, the odd half at 0.3: each is
    # scored at the other's threshold, so neither half scores perfectly.
    labels = np.array([1, 1, 0, 1, 1, 1, 0, 0, 0, 0])
    probs = np.array([0.9, 0.3, 0.5, 0.35, 0.8, 0.4, 0.6, 0.2, 0.1, 0.25])
    even = np.arange(10) % 2 == 0
    assert (best_f1_threshold(labels[even], probs[even]), best_f1_threshold(labels[~even], probs[~even])) == (
        0.8,
        0.3,
    )
    records = by_key(score_out_of_fold(labels=labels, probs=probs, folds=[4] * 10, languages=["en"] * 10))
    predicted = np.where(even, probs >= 0.3, probs >= 0.8)
    true_positives = int(np.sum(predicted & (labels == 1)))
    assert records[(4, None, "f1@oof")].value == pytest.approx(
        2 * true_positives / (predicted.sum() + labels.sum())
    )
    assert records[(4, None, "f1@oof")].value < 1.0
    assert records[(4, None, "threshold@oof")].value == pytest.approx(0.55)
    assert records[(None, None, "f1@oof")].n == 1 and records[(None, None, "f1@oof")].std == 0.0
    with pytest.raises(InputError):
        score_out_of_fold(labels=[1], probs=[0.7], folds=[0], languages=["en"])


def test_cv_mean_and_sample_std_on_a_hand_example() -> None:
    # Fold 0 at 0.5: TP 2, FP 1, FN 0 -> F1 4/5. Fold 1: TP 1, FP 0, FN 1 -> F1 2/3.
    labels = [1, 1, 0, 0, 1, 0, 1, 0]
    probs = [0.9, 0.6, 0.7, 0.1, 0.8, 0.3, 0.4, 0.2]
    folds = [0, 0, 0, 0, 1, 1, 1, 1]
    languages = ["en", "de", "en", "de", "en", "en", "en", "en"]
    records = by_key(score_out_of_fold(labels=labels, probs=probs, folds=folds, languages=languages))
    f1 = records[(None, None, "f1@0.5")]
    assert f1.value == pytest.approx((4 / 5 + 2 / 3) / 2)
    assert f1.std == pytest.approx(abs(4 / 5 - 2 / 3) / math.sqrt(2))
    assert f1.n == 2
    rows = records[(None, None, "rows")]
    assert (rows.value, rows.std, rows.n) == (4.0, 0.0, 2)
    # "de" has rows in fold 0 only: its aggregate is that fold's value, over one fold.
    de = records[(None, "de", "recall@0.5")]
    assert (de.value, de.std, de.n) == (pytest.approx(records[(0, "de", "recall@0.5")].value), 0.0, 1)
    assert (1, "de", "recall@0.5") not in records
    # Fold 0's "de" rows are one positive and one negative; the "en" rows of fold 0 likewise.
    assert records[(0, "de", "positive_rate")].value == pytest.approx(0.5)


def test_cv_aggregate_of_an_auc_skips_the_folds_where_it_is_undefined() -> None:
    labels = [1, 0, 1, 0, 1, 1]
    probs = [0.9, 0.2, 0.4, 0.6, 0.7, 0.8]
    records = by_key(
        score_out_of_fold(labels=labels, probs=probs, folds=[0, 0, 1, 1, 2, 2], languages=["en"] * 6)
    )
    assert math.isnan(records[(2, None, "roc_auc")].value)
    aggregate = records[(None, None, "roc_auc")]
    assert (aggregate.value, aggregate.std, aggregate.n) == (
        pytest.approx(0.5),
        pytest.approx(math.sqrt(0.5)),
        2,
    )


def test_out_of_fold_input_errors_name_the_sequence_and_row() -> None:
    with pytest.raises(InputError) as raised:
        score_out_of_fold(labels=[0, 1], probs=[0.2, 0.8], folds=[0, 1.0], languages=["en", "en"])
    assert raised.value.path == "folds[1]"
    with pytest.raises(InputError) as raised:
        score_out_of_fold(labels=[0, 1], probs=[0.2, 0.8], folds=[0, 1], languages=["en"])
    assert raised.value.path == "languages"
    with pytest.raises(InputError) as raised:
        score_out_of_fold(labels=[0, 1], probs=[0.2, 0.8], folds=[0, 1], languages=["en", None])
    assert raised.value.path == "languages[1]"
