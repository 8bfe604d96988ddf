"""Positive-class scores of relevance predictions: thresholds, out-of-fold cross-fitting, CV aggregates."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from relctl_core.errors import InputError

AT_HALF = {"f1": "f1@0.5", "precision": "precision@0.5", "recall": "recall@0.5"}
AT_OOF = {"f1": "f1@oof", "precision": "precision@oof", "recall": "recall@oof"}
RANKING = ("roc_auc", "pr_auc", "positive_rate", "rows")
POOLED_THRESHOLD = "threshold@oof.pooled"


@dataclass(frozen=True, slots=True)
class MetricRecord:
    """One number of an evaluation, as the run database stores it.

    ``fold`` is the validation fold it was scored on, or None for a CV aggregate (or a value pooled over
    all scored rows); ``language`` is None for all languages together. ``std`` and ``n`` are set on CV
    aggregates only: the sample standard deviation over folds and the number of folds averaged (for
    ``threshold@oof.pooled``, ``n`` is the number of rows it was tuned on and ``std`` is None). ``low``
    and ``high`` bound the 95 % interval of a CV aggregate, resampled by query (stats.py), where one
    was computed.
    """

    fold: int | None
    language: str | None
    name: str
    value: float
    std: float | None = None
    n: int | None = None
    low: float | None = None
    high: float | None = None


def metric_names() -> list[str]:
    """Every metric name ``score_out_of_fold`` emits, in the order a leaderboard shows them."""
    return [*AT_HALF.values(), *AT_OOF.values(), "threshold@oof", *RANKING, POOLED_THRESHOLD]


def binary_metrics(labels: ArrayLike, probs: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    """Positive-class scores of ``probs`` (P(label=1)) against 0/1 ``labels``; a row is predicted relevant
    when its prob is ``>= threshold``.

    Keys: ``f1``, ``precision``, ``recall`` (0.0 where undefined: no predicted or no true positives),
    ``roc_auc``, ``pr_auc`` (average precision), ``positive_rate`` (share of rows labelled 1) and ``rows``.
    ``roc_auc`` and ``pr_auc`` are NaN when only one class is present: a ranking cannot be judged then.
    """
    truth, prob = _checked_pairs(labels, probs)
    if not math.isfinite(threshold):
        raise InputError(f"must be a finite number, got {threshold!r}", path="threshold")
    scores = thresholded_scores(truth, prob >= threshold)
    scores.update(_ranking_scores(truth, prob))
    scores["positive_rate"] = float(truth.mean())
    scores["rows"] = float(truth.size)
    return scores


def best_f1_threshold(labels: ArrayLike, probs: ArrayLike) -> float:
    """The prob threshold that maximises positive-class F1 on these rows.

    Candidates are the distinct probs. Among equally good candidates the one closest to 0.5 wins, and of
    two equally close the lower, so the answer never depends on row order.
    """
    truth, prob = _checked_pairs(labels, probs)
    return tuned_threshold(truth, prob)


def tuned_threshold(truth: np.ndarray, prob: np.ndarray) -> float:
    """best_f1_threshold of a bool ``truth`` and float ``prob`` array already checked (a bootstrap
    calls it thousands of times)."""
    order = np.argsort(-prob, kind="stable")
    descending = prob[order]
    true_positives = np.cumsum(truth[order])
    predicted_positives = np.arange(1, prob.size + 1)
    # Threshold t predicts exactly the rows with prob >= t: the end of each run of equal probs.
    run_end = np.append(descending[1:] != descending[:-1], True)
    candidates = descending[run_end]
    # 2TP / (predicted positives + actual positives) is F1, and is exact enough to compare for ties:
    # integer numerator and denominator, one correctly rounded division.
    f1 = 2 * true_positives[run_end] / (predicted_positives[run_end] + int(truth.sum()))
    tied = candidates[f1 == f1.max()]
    distance = np.abs(tied - 0.5)
    return float(tied[distance == distance.min()].min())


def f1avg(f1_qc: float, f1_qi: float) -> float:
    """The competition's headline score for an experiment that covers both tasks."""
    return 0.5 * f1_qc + 0.5 * f1_qi


def score_out_of_fold(
    *, labels: ArrayLike, probs: ArrayLike, folds: Sequence[int], languages: Sequence[str]
) -> list[MetricRecord]:
    """Score out-of-fold predictions per fold and language, then aggregate them over folds.

    The four sequences are aligned over the validation rows of the folds that were trained (which may be
    a subset of the split's folds). For each fold, overall (``language=None``) and per language, this
    emits the scores at 0.5, the ranking scores, and the scores at ``threshold@oof``: each fold is
    cross-fitted in two halves (alternate rows), each half scored at the threshold tuned with
    ``best_f1_threshold`` on the other half, so no row is scored with a threshold tuned on itself;
    ``threshold@oof`` reports the mean of the two. A language is scored at its fold's thresholds, not
    ones of its own.

    Then one CV aggregate (``fold=None``) per name, overall and per language: the mean over the folds
    where the value is defined (AUCs are NaN on a one-class fold), ``std`` the sample standard deviation
    (ddof=1; 0.0 from a single fold), ``n`` the folds averaged. Last, ``threshold@oof.pooled``: the
    threshold tuned on all scored rows, the one a deployed model would use.
    """
    truth, prob = _checked_pairs(labels, probs)
    fold_of_row = _checked_folds(folds, truth.size)
    language_of_row = _checked_languages(languages, truth.size)
    row_threshold, fold_threshold = _cross_fitted_thresholds(truth, prob, fold_of_row)

    per_fold: list[MetricRecord] = []
    for fold in fold_threshold:
        in_fold = fold_of_row == fold
        groups: list[tuple[str | None, np.ndarray]] = [(None, in_fold)]
        groups += [
            (language, in_fold & (language_of_row == language))
            for language in sorted(set(language_of_row[in_fold]))
        ]
        for language, rows in groups:
            scores = _group_scores(truth[rows], prob[rows], row_threshold[rows], fold_threshold[fold])
            per_fold += [MetricRecord(fold, language, name, value) for name, value in scores.items()]
    pooled = MetricRecord(None, None, POOLED_THRESHOLD, best_f1_threshold(truth, prob), n=int(truth.size))
    return [*per_fold, *_cv_aggregates(per_fold), pooled]


def _group_scores(
    truth: np.ndarray, prob: np.ndarray, row_threshold: np.ndarray, reported_threshold: float
) -> dict[str, float]:
    at_half = binary_metrics(truth, prob, 0.5)
    at_oof = thresholded_scores(truth, prob >= row_threshold)
    scores = {name: at_half[key] for key, name in AT_HALF.items()}
    scores.update({name: at_oof[key] for key, name in AT_OOF.items()})
    scores["threshold@oof"] = reported_threshold
    scores.update({name: at_half[name] for name in RANKING})
    return scores


def _cross_fitted_thresholds(
    truth: np.ndarray, prob: np.ndarray, fold_of_row: np.ndarray
) -> tuple[np.ndarray, dict[int, float]]:
    """Each row's threshold, tuned on the other half of its own fold.

    Each fold is scored by its own fold model, and fold models are calibrated differently (on small
    data wildly so): a threshold tuned on another fold's predictions measures that mismatch rather
    than the model. So each fold is cross-fitted in two halves (alternate rows): each half is scored
    at the threshold tuned on the other half of the same model's predictions.
    """
    row_threshold = np.empty(prob.size)
    fold_threshold: dict[int, float] = {}
    for fold in (int(f) for f in np.unique(fold_of_row)):
        rows = np.flatnonzero(fold_of_row == fold)
        if rows.size < 2:
            raise InputError(f"fold {fold} needs at least 2 scored rows to cross-fit a threshold", path="probs")
        row_threshold[rows] = cross_fitted(truth[rows], prob[rows])
        fold_threshold[fold] = float(np.mean(row_threshold[rows][:2]))  # the two halves' thresholds
    return row_threshold, fold_threshold


def cross_fitted(truth: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """One fold's rows' thresholds (at least 2 rows): alternate rows make two halves, and each half gets
    the threshold tuned on the other."""
    threshold = np.empty(prob.size)
    threshold[0::2] = tuned_threshold(truth[1::2], prob[1::2])
    threshold[1::2] = tuned_threshold(truth[0::2], prob[0::2])
    return threshold


def _cv_aggregates(per_fold: Iterable[MetricRecord]) -> list[MetricRecord]:
    values: dict[tuple[str | None, str], list[float]] = defaultdict(list)
    for record in per_fold:
        values[(record.language, record.name)].append(record.value)
    order = {name: position for position, name in enumerate(metric_names())}
    keys = sorted(values, key=lambda key: (key[0] is not None, key[0] or "", order[key[1]]))
    aggregates = []
    for language, name in keys:
        defined = np.array([value for value in values[(language, name)] if math.isfinite(value)])
        if defined.size == 0:
            aggregates.append(MetricRecord(None, language, name, math.nan, std=math.nan, n=0))
            continue
        std = float(defined.std(ddof=1)) if defined.size >= 2 else 0.0
        aggregates.append(
            MetricRecord(None, language, name, float(defined.mean()), std=std, n=int(defined.size))
        )
    return aggregates


def thresholded_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    true_positives = int(np.sum(truth & predicted))
    predicted_positives = int(predicted.sum())
    actual_positives = int(truth.sum())
    precision = true_positives / predicted_positives if predicted_positives else 0.0
    recall = true_positives / actual_positives if actual_positives else 0.0
    f1 = 2 * true_positives / (predicted_positives + actual_positives) if true_positives else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


def _ranking_scores(truth: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    if truth.all() or not truth.any():
        return {"roc_auc": math.nan, "pr_auc": math.nan}
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(truth, prob)),
        "pr_auc": float(average_precision_score(truth, prob)),
    }


def _checked_pairs(labels: ArrayLike, probs: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Labels as a bool array and probs as float64, or an InputError naming the first bad row."""
    label_array = np.asarray(labels)
    prob_array = np.asarray(probs, dtype=np.float64)
    if label_array.ndim != 1 or prob_array.ndim != 1:
        raise InputError(
            "labels and probs must be flat sequences", path="labels" if label_array.ndim != 1 else "probs"
        )
    if label_array.size != prob_array.size:
        raise InputError(f"{prob_array.size} probs for {label_array.size} labels", path="probs")
    if label_array.size == 0:
        raise InputError("no rows to score", path="labels")
    is_binary = (
        np.isin(label_array, (0, 1)) if label_array.dtype.kind in "biuf" else np.zeros(label_array.size, bool)
    )
    if not is_binary.all():
        row = int(np.argmin(is_binary))
        raise InputError(f"label must be 0 or 1, got {label_array[row]!r}", path=f"labels[{row}]")
    in_range = np.isfinite(prob_array) & (prob_array >= 0.0) & (prob_array <= 1.0)
    if not in_range.all():
        row = int(np.argmin(in_range))
        raise InputError(f"prob must be within [0, 1], got {prob_array[row]!r}", path=f"probs[{row}]")
    return label_array.astype(bool), prob_array


def _checked_folds(folds: Sequence[int], rows: int) -> np.ndarray:
    if len(folds) != rows:
        raise InputError(f"{len(folds)} folds for {rows} labels", path="folds")
    for row, fold in enumerate(folds):
        if isinstance(fold, bool) or not isinstance(fold, int | np.integer):
            raise InputError(f"fold must be an integer, got {fold!r}", path=f"folds[{row}]")
    return np.asarray(folds, dtype=np.int64)


def _checked_languages(languages: Sequence[str], rows: int) -> np.ndarray:
    if len(languages) != rows:
        raise InputError(f"{len(languages)} languages for {rows} labels", path="languages")
    for row, language in enumerate(languages):
        if not isinstance(language, str) or not language:
            raise InputError(
                f"language must be a non-empty string, got {language!r}", path=f"languages[{row}]"
            )
    return np.asarray(languages, dtype=object)
