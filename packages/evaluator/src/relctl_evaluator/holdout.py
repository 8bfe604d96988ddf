"""Scores on the holdout fold (split.holdout_fold): each fold model alone against the ensemble of them.

On out-of-fold rows an ensemble of fold models cannot be scored honestly: fold k's rows are scored
by fold model k, and every other fold model trained on them. The holdout fold is kept out of
cross-validation, so no fold model trained or validated on it, and every one predicted it: there a
fold model and the ensemble of all of them are scored on the same unseen rows.

What is scored, per task, overall and per language, each with a 95 % interval from query-grouped
resamples of the holdout rows (stats.fixed_rule_intervals; all on the same resamples, so the
difference is paired):

* ``holdout.fold.<metric>`` (fold k): fold model k alone (an ensemble of runs: its members' fold-k
  models, combined as on the out-of-fold rows);
* ``holdout.single.<metric>``: the mean of those over the fold models, the score of "one fold model";
* ``holdout.ensemble.<metric>``: the fold models combined by ``ensemble.method``;
* ``holdout.ensemble-single.<metric>``: the ensemble's score less the mean of the fold models' scores
  (equally, the mean of the per-model differences);
* ``holdout.rows``, ``holdout.positive_rate``; ``holdout.fold.threshold`` (fold k) and
  ``holdout.ensemble.threshold`` (ensemble.method mean): the thresholds F1@oof was scored at.

Every threshold is chosen on out-of-fold rows, never on the holdout rows. A fold model is scored at
the threshold tuned on its own out-of-fold rows (fold models are calibrated differently: a threshold
carried over from other models measures that mismatch); the mean ensemble at the pooled out-of-fold
threshold (``threshold@oof.pooled``, the one `relctl predict` applies to it). A vote takes, at 0.5,
the share of fold models that call a row relevant at 0.5 (F1@0.5, and the AUCs rank by that share,
as ensemble.method vote defines it) or each at its own threshold (F1@oof); a majority (a share of at
least 0.5) calls it relevant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from relctl_core.errors import InputError
from relctl_core.folds import read_predictions
from relctl_core.payloads import EvaluatePayload

from relctl_evaluator.metrics import MetricRecord, best_f1_threshold
from relctl_evaluator.stats import FixedRule, ScoredRows, fixed_rule_intervals

PREFIX = "holdout."
# The metrics scored on the holdout rows, each with its interval.
SCORED = ("f1@oof", "f1@0.5", "roc_auc", "pr_auc")
FOLD, SINGLE, ENSEMBLE, DIFFERENCE = "fold", "single", "ensemble", "ensemble-single"


def holdout_name(arm: str, metric: str) -> str:
    """The stored name of a holdout score: holdout.<arm>.<metric> (holdout.<metric> for the rows' own)."""
    return f"{PREFIX}{arm}.{metric}" if arm else f"{PREFIX}{metric}"


def holdout_records(
    payload: EvaluatePayload,
    fold_models: list[dict[int, dict[str, Any]]],
    member_names: list[str],
    oof: Any,
    path: Callable[[str], Path],
    queries_of: Callable[[list[str]], list[str]],
    *,
    combine: Callable[[Any, str], np.ndarray],
    resamples: int | None = None,
) -> list[MetricRecord]:
    """The holdout scores of an evaluate stage. ``fold_models`` holds each member's fold outputs by
    fold (one member: the run itself), ``oof`` the out-of-fold rows it was scored on (tasks.OutOfFold),
    ``queries_of`` the query of each row id, the unit the bootstrap resamples."""
    ids, labels, languages, fold_probs = holdout_predictions(payload, fold_models, member_names, path, combine)
    folds = sorted(fold_probs)
    oof_folds = np.asarray(oof.folds)
    oof_labels, oof_probs = np.asarray(oof.labels), np.asarray(oof.probs, dtype=np.float64)
    own = {fold: best_f1_threshold(oof_labels[oof_folds == fold], oof_probs[oof_folds == fold]) for fold in folds}
    pooled = best_f1_threshold(oof_labels, oof_probs)

    arms: dict[str, list[FixedRule]] = {}
    for fold in folds:
        prob = fold_probs[fold]
        arms[f"{FOLD} {fold}"] = _rules(prob, prob, own[fold])
    stacked = np.array([fold_probs[fold] for fold in folds])
    ranked = combine(stacked, payload.combine)
    if payload.combine == "mean":
        arms[ENSEMBLE] = _rules(ranked, ranked, pooled)
    else:
        votes = np.array([fold_probs[fold] >= own[fold] for fold in folds], dtype=np.float64).mean(axis=0)
        arms[ENSEMBLE] = _rules(ranked, votes, 0.5)
    share = 1.0 / len(folds)
    contrasts = {
        SINGLE: {f"{FOLD} {fold}": share for fold in folds},
        DIFFERENCE: {ENSEMBLE: 1.0, **{f"{FOLD} {fold}": -share for fold in folds}},
    }
    scored = ScoredRows.of(labels, [payload.holdout_fold] * len(ids), queries_of(ids), languages)
    options = {"resamples": resamples} if resamples is not None else {}
    found = fixed_rule_intervals(scored, arms, contrasts, by_language=True, **options)

    records: list[MetricRecord] = []
    subsets = [None, *sorted(set(languages))]
    language_rows = np.asarray(languages, dtype=object)
    for language in subsets:
        rows = np.ones(len(ids), bool) if language is None else language_rows == language
        truth = np.asarray(labels)[rows]
        records.append(MetricRecord(None, language, holdout_name("", "rows"), float(rows.sum())))
        records.append(MetricRecord(None, language, holdout_name("", "positive_rate"), float(truth.mean())))
    for fold in folds:
        for metric in SCORED:
            for language in subsets:
                bounds = found[f"{FOLD} {fold}"][metric][language]
                records.append(MetricRecord(fold, language, holdout_name(FOLD, metric), bounds.value, low=_finite(bounds.low), high=_finite(bounds.high)))
        records.append(MetricRecord(fold, None, holdout_name(FOLD, "threshold"), own[fold], n=int((oof_folds == fold).sum())))
    for arm in (SINGLE, ENSEMBLE, DIFFERENCE):
        for metric in SCORED:
            for language in subsets:
                bounds = found[arm][metric][language]
                per_model = [found[f"{FOLD} {fold}"][metric][language].value for fold in folds]
                defined = [value for value in per_model if math.isfinite(value)]
                std = (float(np.std(defined, ddof=1)) if len(defined) > 1 else 0.0) if arm == SINGLE and defined else None
                records.append(
                    MetricRecord(None, language, holdout_name(arm, metric), bounds.value, std=std, n=len(folds), low=_finite(bounds.low), high=_finite(bounds.high))
                )
    if payload.combine == "mean":
        records.append(MetricRecord(None, None, holdout_name(ENSEMBLE, "threshold"), pooled, n=int(oof_labels.size)))
    return records


def _rules(ranked: np.ndarray, called: np.ndarray, threshold: float) -> list[FixedRule]:
    """F1@0.5 and the AUCs of ``ranked``; F1@oof of ``called`` at ``threshold``."""
    return [
        FixedRule("f1@oof", called, threshold),
        FixedRule("f1@0.5", ranked, 0.5),
        FixedRule("roc_auc", ranked),
        FixedRule("pr_auc", ranked),
    ]


def holdout_predictions(
    payload: EvaluatePayload,
    fold_models: list[dict[int, dict[str, Any]]],
    member_names: list[str],
    path: Callable[[str], Path],
    combine: Callable[[Any, str], np.ndarray],
) -> tuple[list[str], list[int], list[str], dict[int, np.ndarray]]:
    """(ids, labels, languages, fold -> probs) of the holdout rows: each fold model's probs, combined
    over an ensemble's members as its out-of-fold rows are, aligned to the first model's row order.
    Every fold model must have predicted the same rows."""
    ids: list[str] = []
    labels: list[int] = []
    languages: list[str] = []
    fold_probs: dict[int, np.ndarray] = {}
    for fold in sorted(fold_models[0]):
        member_rows = []
        for name, member in zip(member_names, fold_models, strict=True):
            found = member[fold]["artifacts"]
            relative = found.get(f"holdout:{payload.task}") or found.get("holdout")
            if relative is None:
                raise InputError(f"{name} has no predictions of the holdout fold {payload.holdout_fold} in fold {fold}: it was trained without one")
            member_rows.append(read_predictions(path(relative)))
        if not ids:
            first = member_rows[0]
            ids = [str(row["id"]) for row in first]
            labels = [int(row["label"]) for row in first]
            languages = [row["language"] for row in first]
        probs = []
        for name, rows in zip(member_names, member_rows, strict=True):
            by_id = {str(row["id"]): float(row["prob"]) for row in rows}
            if sorted(by_id) != sorted(ids) or len(rows) != len(ids):
                raise InputError(f"{name}'s fold {fold} model predicted other holdout rows than the first fold model: the runs were split differently")
            probs.append([by_id[i] for i in ids])
        fold_probs[fold] = np.asarray(combine(probs, payload.combine), dtype=np.float64)
    if not ids:
        raise InputError(f"the holdout fold {payload.holdout_fold} has no rows")
    return ids, labels, languages, fold_probs


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
