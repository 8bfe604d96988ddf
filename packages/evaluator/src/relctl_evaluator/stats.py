"""How sure a score is: query-grouped bootstrap intervals, paired comparisons and permutation tests.

Rows of one query are correlated (the same query text, the same intent, often the same label), and
the split keeps every query in one fold, so the unit of resampling is the query within its fold: a
resample draws, in each fold, that fold's queries with replacement, and takes all their rows. A
metric is then computed as the leaderboard computes it, as the mean over folds of the fold's score;
F1 at the out-of-fold threshold re-tunes its cross-fitted thresholds inside each resample (each half
of a fold at the threshold tuned on its other half), so no resample scores rows at a threshold tuned
on them.

A comparison is paired: both runs are scored on the same resample of the same rows, and the interval
is that of the difference. Its p-value comes from a paired permutation test that swaps the two
runs' predictions of whole queries at random.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from relctl_core.errors import InputError

from relctl_evaluator.metrics import AT_HALF, AT_OOF, cross_fitted, thresholded_scores

# The metrics a resample can score, each as the mean over folds (the leaderboard's CV mean).
RESAMPLED = ("f1@oof", "precision@oof", "recall@oof", "f1@0.5", "precision@0.5", "recall@0.5", "roc_auc", "pr_auc")
DEFAULT_RESAMPLES = 2000
DEFAULT_PERMUTATIONS = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class ScoredRows:
    """The out-of-fold rows a run was scored on: aligned arrays, one entry per row.

    ``groups`` names each row's query: rows of one query are resampled together."""

    labels: np.ndarray  # bool
    folds: np.ndarray  # int
    groups: np.ndarray  # query of each row (any hashable values)
    languages: np.ndarray  # object

    @classmethod
    def of(cls, labels: Sequence[int], folds: Sequence[int], groups: Sequence[object], languages: Sequence[str] | None = None) -> ScoredRows:
        n = len(labels)
        if not (len(folds) == len(groups) == n and (languages is None or len(languages) == n)):
            raise InputError(f"{n} labels, {len(folds)} folds and {len(groups)} groups: the rows must align")
        if n == 0:
            raise InputError("no rows to score")
        return cls(
            labels=np.asarray(labels).astype(bool),
            folds=np.asarray(folds, dtype=np.int64),
            groups=np.asarray(groups, dtype=object),
            languages=np.asarray(languages if languages is not None else [""] * n, dtype=object),
        )

    def subset(self, rows: np.ndarray) -> ScoredRows:
        return ScoredRows(self.labels[rows], self.folds[rows], self.groups[rows], self.languages[rows])


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    resamples: int


@dataclass(frozen=True)
class Comparison:
    """A minus B on the same rows: the difference, its interval, a permutation p-value, a verdict."""

    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    verdict: str  # "A better", "B better" or "no detectable difference"
    rows: int
    queries: int
    resamples: int

    def as_dict(self) -> dict[str, object]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.__dict__.items()}


# --- metrics on one fold's rows -------------------------------------------------------------------------


def roc_auc(truth: np.ndarray, prob: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic with ties counted half (equal to scikit-learn's)."""
    positives = int(np.count_nonzero(truth))
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(prob, kind="stable")
    sorted_prob = prob[order]
    # Mid-ranks of tied values.
    starts = np.flatnonzero(np.append(True, sorted_prob[1:] != sorted_prob[:-1]))
    ends = np.append(starts[1:], sorted_prob.size)
    mid = (starts + ends + 1) / 2.0
    ranks = np.empty(prob.size)
    ranks[order] = np.repeat(mid, ends - starts)
    return float((ranks[truth].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def average_precision(truth: np.ndarray, prob: np.ndarray) -> float:
    """PR-AUC as average precision over the distinct thresholds (equal to scikit-learn's)."""
    positives = int(np.count_nonzero(truth))
    if positives == 0 or positives == truth.size:
        return math.nan
    order = np.argsort(-prob, kind="stable")
    descending = prob[order]
    run_end = np.append(descending[1:] != descending[:-1], True)
    tp = np.cumsum(truth[order])[run_end]
    predicted = np.arange(1, prob.size + 1)[run_end]
    recall = tp / positives
    precision = tp / predicted
    return float(np.sum(np.diff(np.append(0.0, recall)) * precision))


def fold_score(metric: str, truth: np.ndarray, prob: np.ndarray) -> float:
    """One fold's ``metric``, as metrics.score_out_of_fold computes it for that fold."""
    if metric == "roc_auc":
        return roc_auc(truth, prob)
    if metric == "pr_auc":
        return average_precision(truth, prob)
    key, _, at = metric.partition("@")
    if at == "0.5" and metric in AT_HALF.values():
        return thresholded_scores(truth, prob >= 0.5)[key]
    if at == "oof" and metric in AT_OOF.values():
        if truth.size < 2:
            return math.nan
        return thresholded_scores(truth, prob >= cross_fitted(truth, prob))[key]
    raise InputError(f"cannot resample metric {metric!r}; valid: {', '.join(RESAMPLED)}", path="--metric")


def cv_score(metric: str, truth: np.ndarray, prob: np.ndarray, folds: np.ndarray) -> float:
    """The mean over folds of each fold's score, over the folds where it is defined."""
    values = [fold_score(metric, truth[folds == f], prob[folds == f]) for f in np.unique(folds)]
    defined = [v for v in values if math.isfinite(v)]
    return float(np.mean(defined)) if defined else math.nan


# --- resampling -----------------------------------------------------------------------------------------


class _Resampler:
    """Draws query-grouped resamples of scored rows, within each fold, as row-index arrays.

    Rows are grouped by (fold, query): a query split across folds (a split that is not query-aware)
    is resampled in each fold apart."""

    def __init__(self, scored: ScoredRows) -> None:
        key = np.array([f"{fold}\x00{group}" for fold, group in zip(scored.folds, scored.groups, strict=True)], dtype=object)
        _, group_of_row = np.unique(key, return_inverse=True)
        order = np.lexsort((np.arange(group_of_row.size), group_of_row))
        self.rows_by_group = order
        counts = np.bincount(group_of_row)
        self.starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        self.sizes = counts
        fold_of_group = np.empty(counts.size, dtype=np.int64)
        fold_of_group[group_of_row] = scored.folds
        self.groups_of_fold = [np.flatnonzero(fold_of_group == f) for f in np.unique(scored.folds)]
        self.queries = counts.size

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        picked = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in self.groups_of_fold])
        sizes = self.sizes[picked]
        offsets = np.repeat(np.cumsum(sizes) - sizes, sizes)
        within = np.arange(int(sizes.sum())) - offsets
        return self.rows_by_group[np.repeat(self.starts[picked], sizes) + within]

    def group_of_each_row(self) -> np.ndarray:
        group = np.empty(self.rows_by_group.size, dtype=np.int64)
        group[self.rows_by_group] = np.repeat(np.arange(self.queries), self.sizes)
        return group


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def interval(
    metric: str, scored: ScoredRows, prob: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> Interval:
    """A run's CV score of ``metric`` and its percentile bootstrap interval, resampled by query."""
    prob = np.asarray(prob, dtype=np.float64)
    value = cv_score(metric, scored.labels, prob, scored.folds)
    resampler, rng = _Resampler(scored), np.random.default_rng(seed)
    draws = np.empty(resamples)
    for i in range(resamples):
        rows = resampler.draw(rng)
        draws[i] = cv_score(metric, scored.labels[rows], prob[rows], scored.folds[rows])
    low, high = _percentile_interval(draws, confidence)
    return Interval(value, low, high, resamples)


def compare(
    metric: str,
    scored: ScoredRows,
    prob_a: np.ndarray,
    prob_b: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Comparison:
    """A minus B on the same scored rows, paired: each resample scores both runs on the same rows."""
    prob_a, prob_b = np.asarray(prob_a, dtype=np.float64), np.asarray(prob_b, dtype=np.float64)
    if prob_a.shape != scored.labels.shape or prob_b.shape != scored.labels.shape:
        raise InputError("both runs need a prob for every scored row")
    truth, folds = scored.labels, scored.folds

    def score(prob: np.ndarray, rows: np.ndarray | None = None) -> float:
        if rows is None:
            return cv_score(metric, truth, prob, folds)
        return cv_score(metric, truth[rows], prob[rows], folds[rows])

    a, b = score(prob_a), score(prob_b)
    observed = a - b
    resampler, rng = _Resampler(scored), np.random.default_rng(seed)
    differences = np.empty(resamples)
    for i in range(resamples):
        rows = resampler.draw(rng)
        differences[i] = score(prob_a, rows) - score(prob_b, rows)
    low, high = _percentile_interval(differences, confidence)
    p_value = _permutation_p(observed, prob_a, prob_b, resampler.group_of_each_row(), resampler.queries, score, permutations, rng)
    if math.isfinite(low) and low > 0:
        verdict = "A better"
    elif math.isfinite(high) and high < 0:
        verdict = "B better"
    else:
        verdict = "no detectable difference"
    return Comparison(
        metric=metric, a=a, b=b, difference=observed, low=low, high=high, p_value=p_value, verdict=verdict,
        rows=int(truth.size), queries=resampler.queries, resamples=resamples,
    )  # fmt: skip


def _permutation_p(
    observed: float,
    prob_a: np.ndarray,
    prob_b: np.ndarray,
    group_of_row: np.ndarray,
    groups: int,
    score: Callable[[np.ndarray], float],
    permutations: int,
    rng: np.random.Generator,
) -> float:
    """Two-sided p-value of A == B: each permutation swaps the runs' predictions of a random half of the
    queries (whole queries, so that the test keeps the rows' correlation)."""
    if permutations == 0 or not math.isfinite(observed):
        return math.nan
    extreme = 0
    for _ in range(permutations):
        swapped = rng.random(groups) < 0.5
        swap_row = swapped[group_of_row]
        permuted_a = np.where(swap_row, prob_b, prob_a)
        permuted_b = np.where(swap_row, prob_a, prob_b)
        if abs(score(permuted_a) - score(permuted_b)) >= abs(observed) - 1e-12:
            extreme += 1
    return (extreme + 1) / (permutations + 1)
