"""Query-grouped bootstrap intervals and paired comparisons, checked against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from relctl_evaluator import stats
from relctl_evaluator.metrics import best_f1_threshold, score_out_of_fold
from relctl_evaluator.stats import ScoredRows


def correlated_rows(rng: np.random.Generator, queries: int, rows_per_query: int = 4, folds: int = 2, strength_a: float = 1.0, strength_b: float = 1.0):
    """Rows whose label and scores share a query effect: the rows of one query move together."""
    query = np.repeat(np.arange(queries), rows_per_query)
    query_effect = rng.normal(0, 1.5, queries)[query]
    labels = (query_effect + rng.normal(0, 0.7, query.size)) > -0.5
    signal = np.where(labels, 1.0, -1.0)
    noise = rng.normal(0, 1.0, query.size) + rng.normal(0, 1.0, queries)[query]
    prob_a = 1 / (1 + np.exp(-(strength_a * signal + noise)))
    prob_b = 1 / (1 + np.exp(-(strength_b * signal + rng.normal(0, 1.0, query.size) + rng.normal(0, 1.0, queries)[query])))
    fold = (np.arange(queries) % folds)[query]
    return ScoredRows.of(labels.astype(int), fold, query), prob_a, prob_b


def test_fold_scores_equal_the_evaluators_and_scikit_learns() -> None:
    rng = np.random.default_rng(3)
    scored, prob, _ = correlated_rows(rng, 300, folds=3)
    prob = np.round(prob, 2)  # ties, which every score must count as the evaluator does
    records = score_out_of_fold(labels=scored.labels.astype(int), probs=prob, folds=list(scored.folds), languages=["xx"] * prob.size)
    cv = {r.name: r.value for r in records if r.fold is None and r.language is None}
    for metric in stats.RESAMPLED:
        assert stats.cv_score(metric, scored.labels, prob, scored.folds) == pytest.approx(cv[metric], abs=1e-12), metric
    for fold in range(3):
        rows = scored.folds == fold
        one_fold = (scored.labels[rows], prob[rows], scored.folds[rows])
        assert stats.cv_score("roc_auc", *one_fold) == pytest.approx(roc_auc_score(scored.labels[rows], prob[rows]), abs=1e-12)
        assert stats.cv_score("pr_auc", *one_fold) == pytest.approx(average_precision_score(scored.labels[rows], prob[rows]), abs=1e-12)
    assert math.isnan(stats.cv_score("roc_auc", np.ones(5, bool), np.linspace(0, 1, 5), np.zeros(5, int)))


def test_a_resample_scores_as_its_rows_drawn_out_would() -> None:
    """Weights are copies: a resample scores what the evaluator would on the drawn rows, each half of a
    fold keeping its rows (and their copies) apart from the half its threshold is tuned on."""
    rng = np.random.default_rng(8)
    scored, prob, _ = correlated_rows(rng, 120, folds=2)
    prob = np.round(prob, 2)
    resampler = stats._Resampler(scored)
    subsets = np.ones((1, prob.size), dtype=bool)
    for _ in range(5):
        weights = resampler.draw(rng)
        for metric in ("roc_auc", "pr_auc", "f1@0.5", "recall@0.5"):
            copies = np.repeat(np.arange(prob.size), weights.astype(int))
            expected = stats.cv_score(metric, scored.labels[copies], prob[copies], scored.folds[copies])
            found = stats._RunScores(metric, scored.labels, prob, scored.folds, subsets).scores(weights)[0, 0]
            assert found == pytest.approx(expected, abs=1e-12), metric
        # F1@oof: each half is scored at the threshold tuned on the other half's drawn rows.
        found = stats._RunScores("f1@oof", scored.labels, prob, scored.folds, subsets).scores(weights)[0, 0]
        per_fold = []
        for fold in (0, 1):
            rows = np.flatnonzero(scored.folds == fold)
            halves = (rows[0::2], rows[1::2])
            tp = pp = ap = 0.0
            for scored_half, tuning in ((halves[0], halves[1]), (halves[1], halves[0])):
                tuning_copies = np.repeat(tuning, weights[tuning].astype(int))
                t = best_f1_threshold(scored.labels[tuning_copies], prob[tuning_copies])
                w = weights[scored_half]
                predicted = prob[scored_half] >= t
                truth = scored.labels[scored_half]
                tp, pp, ap = tp + w @ (truth & predicted), pp + w @ predicted, ap + w @ truth
            per_fold.append(2 * tp / (pp + ap))
        assert found == pytest.approx(np.mean(per_fold), abs=1e-12)


def test_per_language_scores_equal_the_evaluators() -> None:
    """A language is scored at its fold's thresholds, as the leaderboard's per-language rows are."""
    rng = np.random.default_rng(4)
    scored, prob, _ = correlated_rows(rng, 240, folds=2)
    languages = rng.choice(["de", "fr", "ja"], scored.labels.size)
    scored = ScoredRows.of(scored.labels.astype(int), scored.folds, scored.groups, languages)
    records = score_out_of_fold(labels=scored.labels.astype(int), probs=prob, folds=list(scored.folds), languages=list(languages))
    for metric in stats.RESAMPLED:
        found = stats.intervals(metric, scored, prob, by_language=True, resamples=5)
        assert set(found) == {None, "de", "fr", "ja"}
        for language, result in found.items():
            [expected] = [r.value for r in records if r.fold is None and r.language == language and r.name == metric]
            assert result.value == pytest.approx(expected, abs=1e-12), (metric, language)


def test_a_known_difference_lands_in_the_interval_about_95_percent_of_the_time() -> None:
    # The population: a million rows; its ROC-AUC difference is the true value the samples estimate.
    population, prob_a, prob_b = correlated_rows(np.random.default_rng(0), 250_000, folds=1, strength_a=1.2, strength_b=0.9)
    everywhere = np.zeros(population.labels.size, dtype=int)
    truth = stats.cv_score("roc_auc", population.labels, prob_a, everywhere) - stats.cv_score("roc_auc", population.labels, prob_b, everywhere)
    assert truth > 0.02
    group_rows = np.arange(population.labels.size).reshape(-1, 4)
    covered, trials = 0, 160
    for seed in range(trials):
        rng = np.random.default_rng(1000 + seed)
        rows = group_rows[rng.choice(group_rows.shape[0], 300, replace=False)].ravel()
        sample = population.subset(rows)
        result = stats.compare("roc_auc", sample, prob_a[rows], prob_b[rows], resamples=300, permutations=0, seed=seed)
        covered += result.low <= truth <= result.high
    coverage = covered / trials
    # 160 trials: the binomial standard error at 95 % is 1.7 points.
    assert 0.88 <= coverage <= 0.99, coverage


def test_identical_runs_show_no_detectable_difference() -> None:
    scored, prob, _ = correlated_rows(np.random.default_rng(5), 200)
    for metric in ("f1@oof", "roc_auc"):
        result = stats.compare(metric, scored, prob, prob.copy(), resamples=300, permutations=300)
        assert result.difference == 0.0 and result.low == 0.0 and result.high == 0.0
        assert result.verdict == "no detectable difference" and result.p_value == 1.0


def test_a_clearly_better_run_is_detected_either_way_round() -> None:
    scored, better, worse = correlated_rows(np.random.default_rng(7), 400, strength_a=2.5, strength_b=0.3)
    forward = stats.compare("f1@oof", scored, better, worse, resamples=400, permutations=400)
    assert forward.verdict == "A better" and forward.low > 0 and forward.p_value < 0.01
    assert forward.a == pytest.approx(stats.cv_score("f1@oof", scored.labels, better, scored.folds))
    backward = stats.compare("f1@oof", scored, worse, better, resamples=400, permutations=400)
    assert backward.verdict == "B better" and backward.high < 0
    assert backward.difference == pytest.approx(-forward.difference)
    assert forward.queries == 400 and forward.rows == 1600


def test_a_small_difference_on_few_queries_is_not_called() -> None:
    scored, a, b = correlated_rows(np.random.default_rng(11), 60, strength_a=1.05, strength_b=1.0)
    result = stats.compare("f1@oof", scored, a, b, resamples=400, permutations=400)
    assert result.low < 0 < result.high and result.verdict == "no detectable difference" and result.p_value > 0.05


def test_resampling_by_query_gives_wider_intervals_than_by_row_when_a_querys_rows_agree() -> None:
    scored, a, b = correlated_rows(np.random.default_rng(13), 300, rows_per_query=6)
    by_row = ScoredRows.of(scored.labels.astype(int), scored.folds, np.arange(scored.labels.size))
    for metric in ("roc_auc", "f1@0.5"):
        grouped = stats.interval(metric, scored, a, resamples=500)
        rows = stats.interval(metric, by_row, a, resamples=500)
        assert grouped.value == rows.value
        assert grouped.high - grouped.low > 1.3 * (rows.high - rows.low), metric
        paired_grouped = stats.compare(metric, scored, a, b, resamples=500, permutations=0)
        paired_rows = stats.compare(metric, by_row, a, b, resamples=500, permutations=0)
        assert paired_grouped.high - paired_grouped.low > paired_rows.high - paired_rows.low, metric


def test_the_same_seed_gives_the_same_interval_and_resamples_stay_within_folds() -> None:
    scored, a, b = correlated_rows(np.random.default_rng(17), 50, folds=3)
    assert stats.compare("f1@oof", scored, a, b, resamples=100, permutations=100, seed=4) == stats.compare(
        "f1@oof", scored, a, b, resamples=100, permutations=100, seed=4
    )
    weights = stats._Resampler(scored).draw(np.random.default_rng(0))
    for fold in range(3):
        assert weights[scored.folds == fold].sum() == np.count_nonzero(scored.folds == fold)  # 4 rows a query
    # A query's rows come whole: the rows of a query share its weight.
    for query in np.unique(scored.groups):
        assert np.unique(weights[scored.groups == query]).size == 1


@pytest.mark.parametrize("metric", ["f1@oof", "roc_auc", "pr_auc", "recall@0.5"])
def test_blocks_of_resamples_and_permutations_score_as_one_at_a_time(metric: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resamples are scored in blocks and permutations as weights over both runs' rows side by side: the
    interval and the p-value are those of scoring each resample, and each run with the predictions of
    a random half of the queries swapped, one at a time (the same draws, in the same order)."""
    monkeypatch.setattr(stats, "BLOCK_CELLS", 7 * 150)  # several blocks, one cut short
    scored, a, b = correlated_rows(np.random.default_rng(23), 50, folds=3, strength_b=0.6)
    a, b = np.round(a, 2), np.round(b, 2)  # ties, within and across the two runs
    scored = ScoredRows.of(scored.labels, scored.folds, scored.groups, np.where(np.arange(a.size) % 3 == 0, "de", "en"))
    found = stats.comparisons(metric, scored, a, b, by_language=True, resamples=60, permutations=40, seed=5)

    names, masks = stats._subsets(scored, True)
    truth, folds = scored.labels, scored.folds
    rng, resampler = np.random.default_rng(5), stats._Resampler(scored)
    observed = stats.cv_scores(metric, truth, a, folds, masks) - stats.cv_scores(metric, truth, b, folds, masks)
    run_a, run_b = (stats._RunScores(metric, truth, prob, folds, masks) for prob in (a, b))
    draws = []
    for _ in range(60):  # one resample at a time (a resample's score is checked above against its rows drawn out)
        weights = resampler.draw(rng)[None]
        draws.append(run_a.scores(weights)[0] - run_b.scores(weights)[0])
    extreme = np.zeros(len(names))
    for _ in range(40):
        swap = (rng.random(resampler.queries) < 0.5)[resampler.group_of_row]
        swapped = stats.cv_scores(metric, truth, np.where(swap, b, a), folds, masks) - stats.cv_scores(metric, truth, np.where(swap, a, b), folds, masks)
        extreme += np.abs(swapped) >= np.abs(observed) - 1e-12
    bounds = stats._percentile_intervals(np.array(draws), stats.CONFIDENCE)
    for j, name in enumerate(names):
        assert found[name].difference == pytest.approx(observed[j], abs=1e-12)
        assert (found[name].low, found[name].high) == pytest.approx(bounds[j], abs=1e-12), (metric, name)
        assert found[name].p_value == (extreme[j] + 1) / 41, (metric, name)


def test_a_metric_that_cannot_be_resampled_is_bad_input() -> None:
    scored, a, b = correlated_rows(np.random.default_rng(1), 20)
    from relctl_core.errors import InputError

    with pytest.raises(InputError, match="threshold@oof"):
        stats.compare("threshold@oof", scored, a, b, resamples=10, permutations=0)
