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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from relctl_core.errors import InputError

from relctl_evaluator.metrics import cross_fitted, thresholded_scores

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


def _check_metric(metric: str) -> None:
    if metric not in RESAMPLED:
        raise InputError(f"cannot resample metric {metric!r}; valid: {', '.join(RESAMPLED)}", path="--metric")


def cv_scores(metric: str, truth: np.ndarray, prob: np.ndarray, folds: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """``metric`` of each subset of rows (a row of the bool matrix ``subsets``: all rows, a language),
    as the evaluator computes it: per fold, then the mean over the folds where it is defined.

    F1 at the out-of-fold threshold cross-fits its thresholds on all of a fold's rows, and a subset is
    scored at its fold's thresholds, not ones of its own (as the evaluator scores a language)."""
    _check_metric(metric)
    key, _, at = metric.partition("@")
    per_fold = np.full((np.unique(folds).size, subsets.shape[0]), np.nan)
    for i, fold in enumerate(np.unique(folds)):
        rows = np.flatnonzero(folds == fold)
        truth_f, prob_f = truth[rows], prob[rows]
        if at == "oof":
            predicted = prob_f >= cross_fitted(truth_f, prob_f) if rows.size >= 2 else None
        elif at == "0.5":
            predicted = prob_f >= 0.5
        for j, subset in enumerate(subsets[:, rows]):
            if not subset.any():
                continue  # the subset has no rows in this fold: the fold does not count for it
            if metric == "roc_auc":
                per_fold[i, j] = roc_auc(truth_f[subset], prob_f[subset])
            elif metric == "pr_auc":
                per_fold[i, j] = average_precision(truth_f[subset], prob_f[subset])
            elif predicted is not None:
                per_fold[i, j] = thresholded_scores(truth_f[subset], predicted[subset])[key]
    defined = np.isfinite(per_fold)
    counts = defined.sum(axis=0)
    totals = np.where(defined, per_fold, 0.0).sum(axis=0)
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def cv_score(metric: str, truth: np.ndarray, prob: np.ndarray, folds: np.ndarray) -> float:
    """``metric`` over all the rows: the mean over folds of each fold's score."""
    return float(cv_scores(metric, truth, prob, folds, np.ones((1, truth.size), dtype=bool))[0])


# --- resampling -----------------------------------------------------------------------------------------


class _Resampler:
    """Draws query-grouped resamples of scored rows, within each fold, as row-index arrays.

    Rows are grouped by (fold, query): a query split across folds (a split that is not query-aware)
    is resampled in each fold apart."""

    def __init__(self, scored: ScoredRows) -> None:
        _, fold_index = np.unique(scored.folds, return_inverse=True)
        _, query_index = np.unique(scored.groups.astype(str), return_inverse=True)
        _, group_of_row = np.unique(fold_index.astype(np.int64) * (query_index.max() + 1) + query_index, return_inverse=True)
        self.rows_by_group = np.lexsort((np.arange(group_of_row.size), group_of_row))
        counts = np.bincount(group_of_row)
        self.starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        self.sizes = counts
        fold_of_group = np.empty(counts.size, dtype=np.int64)
        fold_of_group[group_of_row] = fold_index
        self.groups_of_fold = [np.flatnonzero(fold_of_group == f) for f in range(fold_index.max() + 1)]
        self.group_of_row = group_of_row
        self.queries = int(counts.size)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        picked = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in self.groups_of_fold])
        sizes = self.sizes[picked]
        offsets = np.repeat(np.cumsum(sizes) - sizes, sizes)
        within = np.arange(int(sizes.sum())) - offsets
        return self.rows_by_group[np.repeat(self.starts[picked], sizes) + within]


def _percentile_intervals(draws: np.ndarray, confidence: float) -> list[tuple[float, float]]:
    """The percentile interval of each column of ``draws`` (resamples x subsets)."""
    tail = (1.0 - confidence) / 2.0
    found = []
    for column in draws.T:
        finite = column[np.isfinite(column)]
        if finite.size == 0:
            found.append((math.nan, math.nan))
            continue
        low, high = np.quantile(finite, [tail, 1.0 - tail])
        found.append((float(low), float(high)))
    return found


def _subsets(scored: ScoredRows, by_language: bool) -> tuple[list[str | None], np.ndarray]:
    """(names, masks): all rows (None), then each language's rows with by_language."""
    names: list[str | None] = [None]
    masks = [np.ones(scored.labels.size, dtype=bool)]
    if by_language:
        for language in sorted(set(scored.languages.tolist())):
            names.append(language)
            masks.append(scored.languages == language)
    return names, np.array(masks)


def intervals(
    metric: str,
    scored: ScoredRows,
    prob: np.ndarray,
    *,
    by_language: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str | None, Interval]:
    """A run's CV score of ``metric`` and its percentile bootstrap interval, resampled by query: over
    all rows (key None) and, with by_language, per language."""
    prob = np.asarray(prob, dtype=np.float64)
    names, masks = _subsets(scored, by_language)
    values = cv_scores(metric, scored.labels, prob, scored.folds, masks)
    resampler, rng = _Resampler(scored), np.random.default_rng(seed)
    draws = np.empty((resamples, len(names)))
    for i in range(resamples):
        rows = resampler.draw(rng)
        draws[i] = cv_scores(metric, scored.labels[rows], prob[rows], scored.folds[rows], masks[:, rows])
    bounds = _percentile_intervals(draws, confidence)
    return {name: Interval(float(v), low, high, resamples) for name, v, (low, high) in zip(names, values, bounds, strict=True)}


def interval(metric: str, scored: ScoredRows, prob: np.ndarray, **options: object) -> Interval:
    """intervals() over all rows."""
    return intervals(metric, scored, prob, **options)[None]  # type: ignore[arg-type]


def comparisons(
    metric: str,
    scored: ScoredRows,
    prob_a: np.ndarray,
    prob_b: np.ndarray,
    *,
    by_language: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str | None, Comparison]:
    """A minus B on the same scored rows, paired (each resample scores both runs on the same rows):
    over all rows (key None) and, with by_language, per language."""
    prob_a, prob_b = np.asarray(prob_a, dtype=np.float64), np.asarray(prob_b, dtype=np.float64)
    if prob_a.shape != scored.labels.shape or prob_b.shape != scored.labels.shape:
        raise InputError("both runs need a prob for every scored row")
    truth, folds = scored.labels, scored.folds
    names, masks = _subsets(scored, by_language)

    def difference(a: np.ndarray, b: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if rows is None:
            return cv_scores(metric, truth, a, folds, masks), cv_scores(metric, truth, b, folds, masks)
        m = masks[:, rows]
        return cv_scores(metric, truth[rows], a[rows], folds[rows], m), cv_scores(metric, truth[rows], b[rows], folds[rows], m)

    score_a, score_b = difference(prob_a, prob_b)
    observed = score_a - score_b
    resampler, rng = _Resampler(scored), np.random.default_rng(seed)
    draws = np.empty((resamples, len(names)))
    for i in range(resamples):
        a, b = difference(prob_a, prob_b, resampler.draw(rng))
        draws[i] = a - b
    bounds = _percentile_intervals(draws, confidence)

    # Paired permutations: swap the runs' predictions of whole queries, a random half of them.
    extreme = np.zeros(len(names))
    for _ in range(permutations):
        swap = (rng.random(resampler.queries) < 0.5)[resampler.group_of_row]
        a, b = difference(np.where(swap, prob_b, prob_a), np.where(swap, prob_a, prob_b))
        extreme += np.abs(a - b) >= np.abs(observed) - 1e-12
    found = {}
    for j, name in enumerate(names):
        low, high = bounds[j]
        rows = masks[j]
        p_value = (extreme[j] + 1) / (permutations + 1) if permutations and math.isfinite(observed[j]) else math.nan
        found[name] = Comparison(
            metric=metric, a=float(score_a[j]), b=float(score_b[j]), difference=float(observed[j]), low=low, high=high,
            p_value=float(p_value), verdict=verdict(low, high), rows=int(rows.sum()),
            queries=int(np.unique(resampler.group_of_row[rows]).size), resamples=resamples,
        )  # fmt: skip
    return found


def compare(metric: str, scored: ScoredRows, prob_a: np.ndarray, prob_b: np.ndarray, **options: object) -> Comparison:
    """comparisons() over all rows."""
    return comparisons(metric, scored, prob_a, prob_b, **options)[None]  # type: ignore[arg-type]


def verdict(low: float, high: float) -> str:
    """What an interval of A minus B says: which run is better, or that it cannot tell."""
    if math.isfinite(low) and low > 0:
        return "A better"
    if math.isfinite(high) and high < 0:
        return "B better"
    return "no detectable difference"
