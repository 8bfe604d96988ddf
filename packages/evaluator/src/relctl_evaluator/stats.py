"""How sure a score is: query-grouped bootstrap intervals, paired comparisons and permutation tests.

Rows of one query are correlated (the same query text, the same intent, often the same label), and
the split keeps every query in one fold, so the unit of resampling is the query within its fold: a
resample draws, in each fold, that fold's queries with replacement, and takes all their rows, as
many times as the query was drawn (a weight per row). A metric is then computed as the leaderboard
computes it, as the mean over folds of the fold's score; F1 at the out-of-fold threshold re-tunes
its cross-fitted thresholds inside each resample: each half of a fold (alternate rows, the
evaluator's halves) is scored at the threshold tuned on the other half's rows of the resample. A row
drawn twice stays in its half, so no resample scores a row at a threshold tuned on it or its copy.

With weights, each fold's rows are sorted once per run and every resample is a pass of weighted sums
over them: no sorting per resample.

A comparison is paired: both runs are scored on the same resample of the same rows, and the interval
is that of the difference. Its p-value comes from a paired permutation test that swaps the two
runs' predictions of whole queries at random.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from relctl_core.errors import InputError

# The metrics a resample can score, each as the mean over folds (the leaderboard's CV mean).
RESAMPLED = ("f1@oof", "precision@oof", "recall@oof", "f1@0.5", "precision@0.5", "recall@0.5", "roc_auc", "pr_auc")
DEFAULT_RESAMPLES = 2000
DEFAULT_PERMUTATIONS = 1000
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


def _check_metric(metric: str) -> None:
    if metric not in RESAMPLED:
        raise InputError(f"cannot resample metric {metric!r}; valid: {', '.join(RESAMPLED)}", path="--metric")


class _Sorted:
    """Rows sorted by prob, descending, with the runs of equal probs marked: what a threshold sweep and
    the ranking scores read, for any weights of the rows."""

    def __init__(self, rows: np.ndarray, truth: np.ndarray, prob: np.ndarray) -> None:
        order = np.argsort(-prob[rows], kind="stable")
        self.given = rows
        self.local = order  # positions within ``rows``
        self.rows = rows[order]
        self.truth = truth[self.rows]
        self.values = prob[self.rows]
        self.starts = np.flatnonzero(np.append(True, self.values[1:] != self.values[:-1]))  # first row of each run
        self.ends = np.append(self.starts[1:], self.values.size) - 1  # last row of each run

    def running(self, local_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positive, all) weight of the rows up to the end of each run of equal probs, per row of
        ``local_weights`` (weightings x the rows this was made of, in their order). Weights are counts,
        so every sum is exact whatever the order of the additions."""
        w = np.take(local_weights, self.local, axis=1)
        return np.cumsum(w * self.truth, axis=1)[:, self.ends], np.cumsum(w, axis=1)[:, self.ends]

    def thresholds(self, weights: np.ndarray) -> np.ndarray:
        """The prob threshold that maximises F1 on these rows under each row of ``weights`` (weightings
        x all rows), as metrics.best_f1_threshold chooses it: only probs of rows present (weight > 0)
        are candidates, ties go to the one closest to 0.5, then the lower. NaN where no row is present."""
        tp, pp = self.running(np.take(weights, self.given, axis=1))
        candidates = np.diff(pp, axis=1, prepend=0.0) > 0  # runs with a row present
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(candidates, 2 * tp / (pp + tp[:, -1:]), -1.0)
        values = self.values[self.starts]
        distance = np.where(f1 == f1.max(axis=1, keepdims=True), np.abs(values - 0.5), np.inf)
        chosen = np.where(distance == distance.min(axis=1, keepdims=True), values, np.inf).min(axis=1)
        return np.where(candidates.any(axis=1), chosen, np.nan)


def _counts_scores(tp: np.ndarray, pp: np.ndarray, ap: np.ndarray, key: str) -> np.ndarray:
    """F1, precision or recall from weighted counts (0.0 where undefined, as thresholded_scores)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if key == "f1":
            return np.where(tp > 0, 2 * tp / (pp + ap), 0.0)
        if key == "precision":
            return np.where(pp > 0, tp / np.where(pp > 0, pp, 1), 0.0)
        return np.where(ap > 0, tp / np.where(ap > 0, ap, 1), 0.0)


def _alternate_halves(folds: np.ndarray) -> np.ndarray:
    """The evaluator's halves of each fold for F1 at the out-of-fold threshold: alternate rows of the
    fold (0, 1, 0, ... in row order), each half scored at the threshold tuned on the other."""
    halves = np.empty(folds.size, dtype=np.int64)
    for fold in np.unique(folds):
        rows = np.flatnonzero(folds == fold)
        halves[rows] = np.arange(rows.size) % 2
    return halves


class _RunScores:
    """One run's probs over scored rows, prepared to score ``metric`` under many weightings of the rows
    at once.

    ``scores(weights)`` (weightings x rows) is the metric of each of ``subsets`` (a row of a bool
    matrix: all rows, a language) under each weighting, as the evaluator computes it: per fold, then
    the mean over the folds where it is defined (a subset with no weight in a fold, or an AUC of one
    class there, does not count). F1 at the out-of-fold threshold cross-fits its thresholds on all of
    a fold's rows (``halves``: which rows are tuned on which, by default _alternate_halves), and a
    subset is scored at its fold's thresholds, not ones of its own (as the evaluator scores a language).
    A row of weight 0 is absent: its prob is no threshold candidate and it ranks nowhere."""

    def __init__(
        self, metric: str, truth: np.ndarray, prob: np.ndarray, folds: np.ndarray, subsets: np.ndarray, halves: np.ndarray | None = None
    ) -> None:
        _check_metric(metric)
        self.metric, self.truth, self.prob, self.subsets = metric, truth, prob, subsets
        self.key, _, self.at = metric.partition("@")
        halves = _alternate_halves(folds) if halves is None and self.at == "oof" else halves
        self.folds: list[tuple[np.ndarray, np.ndarray, Any]] = []
        for fold in np.unique(folds):
            rows = np.flatnonzero(folds == fold)
            masks = subsets[:, rows].T.astype(np.float64)  # fold rows x subsets
            prepared: Any = None
            if self.at == "oof":
                assert halves is not None
                half = halves[rows]
                prepared = [(np.flatnonzero(half == h), _Sorted(rows[half != h], truth, prob)) for h in (0, 1)]
            elif self.at == "":
                # A ranking score reads only its subset's rows: each subset sorted apart.
                prepared = [_Sorted(rows[subset[rows]], truth, prob) for subset in subsets]
            self.folds.append((rows, masks, prepared))

    def scores(self, weights: np.ndarray) -> np.ndarray:
        """weightings x subsets."""
        weights = np.atleast_2d(weights)
        per_fold = np.full((len(self.folds), weights.shape[0], self.subsets.shape[0]), np.nan)
        for i, (rows, masks, prepared) in enumerate(self.folds):
            if self.at == "":
                for j, ranked in enumerate(prepared):
                    if ranked.given.size:
                        per_fold[i, :, j] = _ranking_scores(self.metric, ranked, np.take(weights, ranked.given, axis=1))
                continue
            w = np.take(weights, rows, axis=1)
            prob = self.prob[rows]
            tuned = np.ones(weights.shape[0], dtype=bool)
            if self.at == "oof":
                predicted = np.empty(w.shape, dtype=bool)
                for positions, tuning in prepared:
                    threshold = tuning.thresholds(weights)
                    tuned &= np.isfinite(threshold)  # a half with no row drawn: nothing to tune the other half on
                    predicted[:, positions] = prob[positions] >= threshold[:, None]
            else:
                predicted = np.broadcast_to(prob >= 0.5, w.shape)
            called = w * predicted
            truth = self.truth[rows]
            tp, pp, ap, present = called @ (masks * truth[:, None]), called @ masks, w @ (masks * truth[:, None]), w @ masks
            found = np.where(present > 0, _counts_scores(tp, pp, ap, self.key), np.nan)
            found[~tuned] = np.nan
            per_fold[i] = found
        defined = np.isfinite(per_fold)
        counts = defined.sum(axis=0)
        totals = np.where(defined, per_fold, 0.0).sum(axis=0)
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def _ranking_scores(metric: str, prepared: _Sorted, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC or average precision of the rows ``prepared`` holds, under each row of ``weights``
    (any number of weightings x those rows, in the order they were given)."""
    tp, pp = prepared.running(weights)
    positives = np.diff(tp, axis=1, prepend=0.0)
    p, n = tp[:, -1], pp[:, -1] - tp[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "roc_auc":
            # Runs are in descending prob: a positive beats the negatives of the runs after its own
            # and ties with those of its run (half-integers: exact sums).
            negatives_through = pp - tp
            negatives = np.diff(negatives_through, axis=1, prepend=0.0)
            auc = (positives * (n[:, None] - negatives_through + 0.5 * negatives)).sum(axis=1) / (p * n)
        else:
            precision = np.where(pp > 0, tp / np.where(pp > 0, pp, 1), 0.0)
            auc = (positives / p[:, None] * precision).sum(axis=1)
    return np.where((p > 0) & (n > 0), auc, np.nan)


def cv_scores(metric: str, truth: np.ndarray, prob: np.ndarray, folds: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """``metric`` of each subset of rows (a row of the bool matrix ``subsets``), unweighted."""
    return _RunScores(metric, truth, np.asarray(prob, dtype=np.float64), folds, subsets).scores(np.ones(truth.size, dtype=np.int64))[0]


def cv_score(metric: str, truth: np.ndarray, prob: np.ndarray, folds: np.ndarray) -> float:
    """``metric`` over all the rows: the mean over folds of each fold's score."""
    return float(cv_scores(metric, truth, prob, folds, np.ones((1, truth.size), dtype=bool))[0])


# --- resampling -----------------------------------------------------------------------------------------


class _Resampler:
    """Draws query-grouped resamples of scored rows, within each fold, as a weight per row (how many
    times its query was drawn).

    Rows are grouped by (fold, query): a query split across folds (a split that is not query-aware)
    is resampled in each fold apart."""

    def __init__(self, scored: ScoredRows) -> None:
        _, fold_index = np.unique(scored.folds, return_inverse=True)
        _, query_index = np.unique(scored.groups.astype(str), return_inverse=True)
        _, group_of_row = np.unique(fold_index.astype(np.int64) * (query_index.max() + 1) + query_index, return_inverse=True)
        self.group_of_row = group_of_row
        self.queries = int(group_of_row.max()) + 1
        fold_of_group = np.empty(self.queries, dtype=np.int64)
        fold_of_group[group_of_row] = fold_index
        self.groups_of_fold = [np.flatnonzero(fold_of_group == f) for f in range(fold_index.max() + 1)]

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        picked = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in self.groups_of_fold])
        return np.bincount(picked, minlength=self.queries)[self.group_of_row]

    def draws(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` resamples (count x rows), the same as ``count`` calls of draw()."""
        return np.stack([self.draw(rng) for _ in range(count)]) if count else np.empty((0, self.group_of_row.size), dtype=np.int64)

    def swaps(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` paired permutations (count x rows, 1 where a row's query swaps its runs): a
        random half of the queries each."""
        return np.stack([(rng.random(self.queries) < 0.5)[self.group_of_row] for _ in range(count)]).astype(np.int64)


# Resamples scored together: a block of weights is at most this many x the rows, and at most
# BLOCK_CELLS cells, so that a block's running sums stay in the CPU's cache (weights are int64 counts:
# integer running sums are several times faster than float ones, and exact).
RESAMPLE_BLOCK = 128
BLOCK_CELLS = 131_072


def _blocks(total: int, rows: int) -> list[int]:
    """The sizes of the blocks that ``total`` resamples of ``rows`` rows are scored in."""
    size = max(1, min(RESAMPLE_BLOCK, BLOCK_CELLS // max(rows, 1)))
    return [min(size, total - start) for start in range(0, total, size)]


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
    options = {"by_language": by_language, "resamples": resamples, "seed": seed, "confidence": confidence}
    return metric_intervals([metric], scored, prob, **options)[metric]  # type: ignore[arg-type]


def metric_intervals(
    metrics: Sequence[str],
    scored: ScoredRows,
    prob: np.ndarray,
    *,
    by_language: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, dict[str | None, Interval]]:
    """intervals() of several metrics from the same resamples: metric -> subset -> interval."""
    names, masks = _subsets(scored, by_language)
    prob = np.asarray(prob, dtype=np.float64)
    runs = {metric: _RunScores(metric, scored.labels, prob, scored.folds, masks) for metric in metrics}
    ones = np.ones(scored.labels.size, dtype=np.int64)
    values = {metric: run.scores(ones)[0] for metric, run in runs.items()}
    resampler, rng = _Resampler(scored), np.random.default_rng(seed)
    blocks: dict[str, list[np.ndarray]] = {metric: [np.empty((0, len(names)))] for metric in metrics}
    for size in _blocks(resamples, scored.labels.size):
        weights = resampler.draws(rng, size)
        for metric, run in runs.items():
            blocks[metric].append(run.scores(weights))
    found: dict[str, dict[str | None, Interval]] = {}
    for metric in metrics:
        bounds = _percentile_intervals(np.concatenate(blocks[metric]), confidence)
        found[metric] = {
            name: Interval(float(v), low, high, resamples) for name, v, (low, high) in zip(names, values[metric], bounds, strict=True)
        }
    return found


@dataclass(frozen=True)
class FixedRule:
    """One metric of one set of predictions at a rule fixed on other rows: the probs, and the threshold
    at which a thresholded metric (f1@..., precision@..., recall@...) calls a row relevant (a ranking
    metric, roc_auc or pr_auc, reads the probs alone)."""

    metric: str
    prob: np.ndarray
    threshold: float = 0.5


class _FixedRuleScores:
    """One FixedRule over scored rows, scored under many weightings at once (resamples x rows): per
    fold, then the mean over the folds where it is defined, each subset (a row of the bool matrix
    ``subsets``) apart, as _RunScores scores it. Nothing is tuned on the rows, so which rows a rule
    calls relevant is known before any resample is drawn, and every resample is a matrix product."""

    def __init__(self, rule: FixedRule, truth: np.ndarray, folds: np.ndarray, subsets: np.ndarray) -> None:
        _check_metric(rule.metric)
        if not math.isfinite(rule.threshold):
            raise InputError(f"threshold must be a finite number, got {rule.threshold!r}", path="threshold")
        self.metric = rule.metric
        self.key, _, self.at = rule.metric.partition("@")
        prob = np.asarray(rule.prob, dtype=np.float64)
        if prob.shape != truth.shape:
            raise InputError(f"{prob.size} probs for {truth.size} scored rows", path="probs")
        self.subsets = subsets.shape[0]
        self.folds: list[Any] = []
        for fold in np.unique(folds):
            rows = np.flatnonzero(folds == fold)
            if self.at == "":
                self.folds.append([_Sorted(rows[subset[rows]], truth, prob) for subset in subsets])
                continue
            called = prob[rows] >= rule.threshold
            masks = subsets[:, rows].T.astype(np.float64)  # fold rows x subsets
            counts = np.stack([masks * (truth[rows] & called)[:, None], masks * called[:, None], masks * truth[rows][:, None], masks])
            self.folds.append((rows, counts))

    def scores(self, weights: np.ndarray) -> np.ndarray:
        """The metric under each weighting (rows of ``weights``), per subset: weightings x subsets."""
        per_fold = np.full((len(self.folds), weights.shape[0], self.subsets), np.nan)
        for i, prepared in enumerate(self.folds):
            if self.at == "":
                for j, ranked in enumerate(prepared):
                    if ranked.given.size:
                        per_fold[i, :, j] = _ranking_scores(self.metric, ranked, np.take(weights, ranked.given, axis=1))
                continue
            rows, counts = prepared
            tp, pp, ap, present = (np.take(weights, rows, axis=1) @ count for count in counts)
            per_fold[i] = np.where(present > 0, _counts_scores(tp, pp, ap, self.key), np.nan)
        defined = np.isfinite(per_fold)
        count = defined.sum(axis=0)
        total = np.where(defined, per_fold, 0.0).sum(axis=0)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def fixed_rule_intervals(
    scored: ScoredRows,
    arms: dict[str, list[FixedRule]],
    contrasts: dict[str, dict[str, float]] | None = None,
    *,
    by_language: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, dict[str, dict[str | None, Interval]]]:
    """Scores of several sets of predictions of the same rows (``arms``, each a list of metrics at
    rules fixed on other rows), and of weighted sums of arms' scores (``contrasts``: name -> {arm:
    weight}, e.g. the mean of several arms, or a difference), each with its percentile bootstrap
    interval, resampled by query as intervals() resamples: name -> metric -> subset (None: all rows;
    with by_language, each language) -> interval.

    Every arm and contrast is scored on the same resamples, so a contrast's interval is that of a
    paired difference. A contrast has the metrics all of its arms have; it is NaN in a resample where
    any of its terms is."""
    names, masks = _subsets(scored, by_language)
    runs = {(arm, rule.metric): _FixedRuleScores(rule, scored.labels, scored.folds, masks) for arm, rules in arms.items() for rule in rules}
    metrics = list(dict.fromkeys(metric for _, metric in runs))
    combined = {
        (name, metric): terms
        for name, terms in (contrasts or {}).items()
        for metric in metrics
        if all((arm, metric) in runs for arm in terms)
    }

    def all_scores(weights: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
        found = {key: run.scores(weights) for key, run in runs.items()}
        for (name, metric), terms in combined.items():
            found[(name, metric)] = sum(weight * found[(arm, metric)] for arm, weight in terms.items())
        return found

    values = all_scores(np.ones((1, scored.labels.size), dtype=np.int64))
    resampler, rng = _Resampler(scored), np.random.default_rng(seed)
    blocks: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in values}
    for size in _blocks(resamples, scored.labels.size):
        for key, drawn in all_scores(resampler.draws(rng, size)).items():
            blocks[key].append(drawn)
    found: dict[str, dict[str, dict[str | None, Interval]]] = {}
    for (name, metric), value in values.items():
        draws = np.concatenate(blocks[(name, metric)]) if resamples else np.empty((0, len(names)))
        bounds = _percentile_intervals(draws, confidence)
        found.setdefault(name, {})[metric] = {
            subset: Interval(float(v), low, high, resamples) for subset, v, (low, high) in zip(names, value[0], bounds, strict=True)
        }
    return found


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

    run_a, run_b = _RunScores(metric, truth, prob_a, folds, masks), _RunScores(metric, truth, prob_b, folds, masks)
    ones = np.ones((1, truth.size), dtype=np.int64)
    score_a, score_b = run_a.scores(ones)[0], run_b.scores(ones)[0]
    observed = score_a - score_b
    resampler, rng = _Resampler(scored), np.random.default_rng(seed)
    drawn = [np.empty((0, len(names)))]
    for size in _blocks(resamples, truth.size):
        weights = resampler.draws(rng, size)
        drawn.append(run_a.scores(weights) - run_b.scores(weights))
    bounds = _percentile_intervals(np.concatenate(drawn), confidence)

    # Paired permutations: swap the runs' predictions of whole queries, a random half of them. Both
    # runs' rows stand side by side, each row twice (A's prob, then B's); a permuted run weighs one
    # copy of each row 1 and the other 0, so one sort serves every permutation.
    extreme = np.zeros(len(names))
    both = _RunScores(
        metric, np.concatenate([truth, truth]), np.concatenate([prob_a, prob_b]), np.concatenate([folds, folds]),
        np.concatenate([masks, masks], axis=1), halves=np.tile(_alternate_halves(folds), 2),
    )  # fmt: skip
    for size in _blocks(permutations, 2 * truth.size):
        swap = resampler.swaps(rng, size)
        a = both.scores(np.concatenate([1 - swap, swap], axis=1))
        b = both.scores(np.concatenate([swap, 1 - swap], axis=1))
        extreme += (np.abs(a - b) >= np.abs(observed) - 1e-12).sum(axis=0)
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
