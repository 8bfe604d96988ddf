"""Leaderboards from the run database: runs ranked by the CV mean of a metric, baselines beside them."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relctl_core.db import DONE, Experiment, Metric, Run

DEFAULT_METRIC = "f1@oof"
SHOWN = ("f1@oof", "f1@0.5", "roc_auc", "pr_auc")


def leaderboard(
    session: Session,
    *,
    experiment_id: int | None = None,
    task: str | None = None,
    metric: str = DEFAULT_METRIC,
    by_language: bool = False,
) -> list[dict[str, Any]]:
    """One row per finished run (per run and language with by_language), best CV mean first.

    Each row: experiment, run, kind, task, language, the ranking metric's mean/std/folds, and the CV
    means of the other headline metrics."""
    query = (
        select(Metric, Run, Experiment.name)
        .join(Run, Metric.run_id == Run.id)
        .join(Experiment, Run.experiment_id == Experiment.id)
        .where(Metric.fold.is_(None), Run.status == DONE)
    )
    if experiment_id is not None:
        query = query.where(Run.experiment_id == experiment_id)
    if task is not None:
        query = query.where(Metric.task == task.upper())
    query = query.where(Metric.language.is_not(None) if by_language else Metric.language.is_(None))
    # Keyed by the metric's task too: a model for both tasks has a row per task.
    rows: dict[tuple[int, str, str | None], dict[str, Any]] = {}
    reads_translations: set[int] = set()  # model runs whose input includes the English query
    for m, run, experiment_name in session.execute(query):
        row = rows.setdefault(
            (run.id, m.task or run.task, m.language),
            {
                "experiment_id": run.experiment_id,
                "experiment": experiment_name,
                "run_id": run.id,
                "run": run.name,
                "kind": run.kind,
                "task": m.task or run.task,
                "language": m.language,
                "metric": metric,
            },
        )
        if run.kind == "model" and run.config.get("mode", "orig") != "orig":
            reads_translations.add(run.id)
        if m.name == metric:
            row.update(mean=m.value, std=m.std, folds=m.n)
        if m.name in SHOWN:
            row[m.name] = m.value
    ranked = [r for r in rows.values() if "mean" in r]
    if by_language and ranked:
        chrf = translation_quality(session, {r["experiment_id"] for r in ranked})
        for row in ranked:
            value = chrf.get((row["experiment_id"], row["task"], row["language"]))
            if value is not None and row["run_id"] in reads_translations:
                row["chrf"] = value
    ranked.sort(key=lambda r: (r["task"], r["language"] or "", -(r["mean"] if r["mean"] is not None else float("-inf"))))
    return ranked


def translation_quality(session: Session, experiment_ids: set[int]) -> dict[tuple[int, str, str], float]:
    """(experiment, task, language) -> chrF of the experiment's translator on the reference set, where its
    translate stage measured one: per-language relevance beside per-language translation quality."""
    query = select(Metric.experiment_id, Metric.task, Metric.language, Metric.value).where(
        Metric.name == "translation.chrf", Metric.run_id.is_(None), Metric.experiment_id.in_(experiment_ids)
    )
    return {(e, (t or "").upper(), lang): v for e, t, lang, v in session.execute(query) if lang is not None}


def f1avg(rows: list[dict[str, Any]], session: Session) -> list[dict[str, Any]]:
    """F1avg = 0.5 F1_QC + 0.5 F1_QI for runs of one experiment that differ only in their task."""
    by_pair: dict[tuple[int, str], dict[str, float]] = defaultdict(dict)
    names: dict[tuple[int, str], str] = {}
    for row in rows:
        if row["language"] is not None or row.get("mean") is None:
            continue
        run = session.get(Run, row["run_id"])
        assert run is not None
        overrides = {k: v for k, v in (run.config.get("overrides") or {}).items() if k != "task"}
        # A model for both tasks pairs with itself, never with the single-task runs beside it.
        both = f"both:{run.id}" if run.task == "BOTH" else ""
        key = (row["experiment_id"], run.kind + repr(sorted(overrides.items())) + (run.name if run.kind == "baseline" else "") + both)
        by_pair[key][row["task"]] = row["mean"]
        without_task = ",".join(part for part in run.name.split(",") if not part.startswith("task="))
        names[key] = run.name if both else (without_task or row["experiment"])
    return sorted(
        (
            {"experiment_id": key[0], "run": names[key], "metric": rows[0]["metric"], "f1avg": 0.5 * tasks["QC"] + 0.5 * tasks["QI"]}
            for key, tasks in by_pair.items()
            if {"QC", "QI"} <= tasks.keys()
        ),
        key=lambda r: -r["f1avg"],
    )
