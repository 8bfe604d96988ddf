"""The evaluator's stages: baselines fitted per fold, and a run's scoring across its folds."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from celery import shared_task
from relctl_core import names
from relctl_core.errors import InputError
from relctl_core.folds import load_fold, read_predictions, write_prediction_rows, write_predictions
from relctl_core.payloads import BaselinePayload, EvaluatePayload
from relctl_core.pipeline import StageContext, execute_stage
from relctl_core.stages import stable_hash

from relctl_evaluator import __version__
from relctl_evaluator.holdout import ENSEMBLE, SINGLE, holdout_name, holdout_records
from relctl_evaluator.lexical import LexicalBaseline, all_relevant_proba
from relctl_evaluator.metrics import MetricRecord, score_out_of_fold
from relctl_evaluator.stats import ScoredRows, metric_intervals

# The metrics whose CV means carry an interval: the leaderboard's columns.
INTERVALS = ("f1@oof", "f1@0.5", "roc_auc", "pr_auc")


def fit_baseline(ctx: StageContext) -> dict[str, Any]:
    payload = BaselinePayload.model_validate(ctx.config)
    data = load_fold(ctx, payload.fold, payload.task)
    if payload.baseline == "lexical":
        model = LexicalBaseline(seed=payload.seed).fit(
            [e.query for e in data.train], [e.target for e in data.train], [int(e.label or 0) for e in data.train]
        )

        def predict(rows: list[Any]) -> Any:
            return model.predict_proba([e.query for e in rows], [e.target for e in rows]) if rows else []
    else:

        def predict(rows: list[Any]) -> Any:
            return all_relevant_proba(len(rows))

    return _fold_output(ctx, payload.fold, data.val, predict(data.val), data.test, predict(data.test), data.holdout, predict(data.holdout))


def _fold_output(
    ctx: StageContext, fold: int, val: list[Any], val_probs: Any, test: list[Any], test_probs: Any, holdout: list[Any], holdout_probs: Any
) -> dict[str, Any]:
    oof_file = ctx.work_dir / "oof.jsonl"
    write_predictions(oof_file, val, val_probs, with_label=True)
    artifacts = {"oof": ctx.relative(oof_file)}
    if test:
        test_file = ctx.work_dir / "test.jsonl"
        write_predictions(test_file, test, test_probs, with_label=False)
        artifacts["test"] = ctx.relative(test_file)
    if holdout:
        holdout_file = ctx.work_dir / "holdout.jsonl"
        write_predictions(holdout_file, holdout, holdout_probs, with_label=True)
        artifacts["holdout"] = ctx.relative(holdout_file)
    digest = hashlib.sha256(b"".join(ctx.path(p).read_bytes() for p in artifacts.values())).hexdigest()
    return {"hash": digest, "artifacts": artifacts, "fold": fold}


@dataclass(frozen=True)
class OutOfFold:
    """The out-of-fold rows a run is scored on, combined over an ensemble's members: aligned lists."""

    ids: list[str]
    labels: list[int]
    probs: list[float]
    folds: list[int]
    languages: list[str]


def _fold_artifact(output: dict[str, Any], kind: str, task: str) -> str | None:
    """A fold output's predictions of this task: a model for both tasks keeps each task's apart."""
    found = output["artifacts"]
    return found.get(f"{kind}:{task}") or found.get(kind)


def _members(payload: EvaluatePayload, fold_outputs: list[dict[str, Any]]) -> tuple[list[dict[int, dict[str, Any]]], list[str]]:
    """The fold outputs of each member (one: the run itself), by fold, and the members' names."""
    if payload.members:
        sizes = [len(member.folds) for member in payload.members]
        starts = np.cumsum([0, *sizes])
        per_member = [fold_outputs[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]
        names_of = [f"run {member.run}" for member in payload.members]
    else:
        per_member, names_of = [fold_outputs], ["the run"]
    return [{int(o["fold"]): o for o in outputs} for outputs in per_member], names_of


def out_of_fold(payload: EvaluatePayload, fold_outputs: list[dict[str, Any]], path: Callable[[str], Path]) -> OutOfFold:
    """An evaluate stage's out-of-fold rows, fold by fold, from its dependencies' fold outputs (in
    dependency order: an ensemble's are its members' fold stages, member by member); ``path`` turns an
    artifact's relative path into a file."""
    folds_of_member, names_of = _members(payload, fold_outputs)
    rows = OutOfFold([], [], [], [], [])
    for fold in sorted(folds_of_member[0]):
        fold_rows = [read_predictions(path(_fold_artifact(member[fold], "oof", payload.task))) for member in folds_of_member]
        ids = [row["id"] for row in fold_rows[0]]
        for name, member_rows in zip(names_of[1:], fold_rows[1:], strict=True):
            if sorted(map(str, (row["id"] for row in member_rows))) != sorted(map(str, ids)):
                raise InputError(f"{name} scored other rows than {names_of[0]} in fold {fold}: the runs were split differently")
        by_id = [{row["id"]: float(row["prob"]) for row in member_rows} for member_rows in fold_rows]
        combined = combine_probs([[member[i] for i in ids] for member in by_id], payload.combine)
        for row, prob in zip(fold_rows[0], combined, strict=True):
            rows.ids.append(row["id"])
            rows.labels.append(int(row["label"]))
            rows.probs.append(float(prob))
            rows.folds.append(fold)
            rows.languages.append(row["language"])
    return rows


def evaluate_run(ctx: StageContext) -> dict[str, Any]:
    """Score a run's out-of-fold predictions and combine its fold models' test predictions.

    Also scores an ensemble of runs (``relctl ensemble``): its config lists the member runs, and its
    dependencies are their fold stages, member by member. With a holdout fold, also scores the fold
    models and their ensemble on the holdout rows (holdout.py)."""
    fold_outputs = [output for kind, _config, output in ctx.deps if kind in ("train", "baseline")]
    payload = EvaluatePayload.model_validate(ctx.config)
    oof = out_of_fold(payload, fold_outputs, ctx.path)
    scored = score_out_of_fold(labels=oof.labels, probs=oof.probs, folds=oof.folds, languages=oof.languages)
    query_of = dataset_query_of(ctx, payload.task)

    def queries_of(ids: list[str]) -> list[str]:
        return [query_of[row_id] for row_id in ids]

    records = [asdict(r) for r in with_intervals(scored, oof, queries_of(oof.ids))]
    if payload.holdout_fold is not None:
        # The fold models and their ensemble on the rows none of them saw (holdout.py).
        folds_of_member, member_names = _members(payload, fold_outputs)
        held = holdout_records(payload, folds_of_member, member_names, oof, ctx.path, queries_of, combine=combine_probs)
        records += [asdict(r) for r in held]

    test_probs: dict[str, list[float]] = defaultdict(list)
    test_language: dict[str, str] = {}
    folds_of_member, _ = _members(payload, fold_outputs)
    for fold in sorted(folds_of_member[0]):
        for member in folds_of_member:
            test_file = _fold_artifact(member[fold], "test", payload.task)
            if test_file:
                for row in read_predictions(ctx.path(test_file)):
                    test_probs[row["id"]].append(float(row["prob"]))
                    test_language[row["id"]] = row["language"]
    artifacts = {}
    if test_probs:
        ensemble_file = ctx.work_dir / "test_predictions.jsonl"
        test_ids = list(test_probs)
        test_combined = combine_probs(np.array([test_probs[i] for i in test_ids]).T, payload.combine)
        write_prediction_rows(
            ensemble_file,
            ({"id": i, "language": test_language[i], "prob": float(p)} for i, p in zip(test_ids, test_combined, strict=True)),
        )
        artifacts["test_predictions"] = ctx.relative(ensemble_file)
    overall = {r["name"]: r["value"] for r in records if r["fold"] is None and r["language"] is None}
    ctx.log(
        "CV over folds {}: F1@0.5 {:.4f}, F1@oof {:.4f}, ROC-AUC {:.4f}".format(
            sorted(set(oof.folds)), overall.get("f1@0.5", float("nan")), overall.get("f1@oof", float("nan")), overall.get("roc_auc", float("nan"))
        )
    )
    if payload.holdout_fold is not None:
        ctx.log(
            "holdout fold {}: F1@oof one fold model {:.4f}, ensemble ({}) {:.4f}".format(
                payload.holdout_fold, _or_nan(overall.get(holdout_name(SINGLE, "f1@oof"))), payload.combine, _or_nan(overall.get(holdout_name(ENSEMBLE, "f1@oof")))
            )
        )
    return {"hash": stable_hash(records), "artifacts": artifacts, "metrics": records, "rows": len(oof.labels)}


def dataset_query_of(ctx: StageContext, task: str) -> dict[str, str]:
    """Row id -> query of the dataset the run's folds were split from: the query is the unit that the
    bootstrap resamples."""
    from relctl_core.db import Stage, session_scope

    from relctl_evaluator.compare import dataset_queries

    with session_scope(ctx.settings.database_url) as session:
        stage = session.get(Stage, ctx.stage_id)
        assert stage is not None
        fold_stage = next(dep for dep_id in stage.depends_on if (dep := session.get(Stage, dep_id)) is not None and dep.kind in ("train", "baseline"))
        return dataset_queries(session, ctx.settings, fold_stage, task)


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def with_intervals(records: list[MetricRecord], oof: OutOfFold, queries: list[str]) -> list[MetricRecord]:
    """The records, the CV aggregates of the resampled metrics with the 95 % interval of their mean,
    overall and per language (query-grouped bootstrap, as `relctl compare` resamples)."""
    scored = ScoredRows.of(oof.labels, oof.folds, queries, oof.languages)
    found = metric_intervals(INTERVALS, scored, np.asarray(oof.probs), by_language=True)
    bounded = []
    for record in records:
        bounds = found.get(record.name, {}).get(record.language) if record.fold is None else None
        if bounds is not None:
            record = replace(record, low=_finite_or_none(bounds.low), high=_finite_or_none(bounds.high))
        bounded.append(record)
    return bounded


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def combine_probs(member_probs: Any, method: str) -> np.ndarray:
    """One probability per row from several models' (rows of ``member_probs``, one per model).

    ``mean``: the mean probability. ``vote``: the share of models that call the row relevant at 0.5, a
    fixed threshold, so that no threshold is tuned on the rows being scored. One model's probabilities
    pass through either way.
    """
    probs = np.asarray(member_probs, dtype=np.float64)
    if len(probs) == 1:
        return probs[0]
    if method == "mean":
        return probs.mean(axis=0)
    if method == "vote":
        return (probs >= 0.5).mean(axis=0)
    raise ValueError(f"unknown combination {method!r}")


@shared_task(name=names.BASELINE, bind=True)
def baseline(self: Any, stage_id: int, gpu: str = "cpu") -> str:
    return execute_stage(stage_id, fit_baseline, version=__version__, task_id=self.request.id)


@shared_task(name=names.EVALUATE, bind=True)
def evaluate(self: Any, stage_id: int, gpu: str = "cpu") -> str:
    return execute_stage(stage_id, evaluate_run, version=__version__, task_id=self.request.id)
