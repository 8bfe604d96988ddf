"""Leaderboards from the run database: runs ranked by the CV mean of a metric, baselines beside them.

The ranking, the filters, the F1avg pairing and the cut to the rows shown run in the database, on
indexes made for them (db.py), and only the rows shown come back: a board costs about the same at a
hundred experiments as at ten thousand. ``limit`` keeps the top rows of each task (of each task and
language with ``by_language``), so that one task's runs never push the other's off the board; how many
rows there were before the cut comes back with them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, literal_column, select, tuple_
from sqlalchemy.orm import Session

from relctl_core.db import DONE, Experiment, Metric, Run
from relctl_core.errors import InputError
from relctl_core.stages import TASK_CODES

DEFAULT_METRIC = "f1@oof"
DEFAULT_LIMIT = 50
SHOWN = ("f1@oof", "f1@0.5", "roc_auc", "pr_auc")
TASKS = ("qc", "qi")  # the tasks runs are scored on (a model for both is scored on each)
CHRF = "translation.chrf"
# What the evaluator writes for every run (relctl_evaluator.metrics.metric_names(), in its order; a
# cross-package test keeps the two alike): what one may rank by before any run has been scored.
KNOWN_METRICS = (
    "f1@0.5", "precision@0.5", "recall@0.5", "f1@oof", "precision@oof", "recall@oof", "threshold@oof",
    "roc_auc", "pr_auc", "positive_rate", "rows", "threshold@oof.pooled",
)  # fmt: skip


@dataclass(frozen=True)
class Board:
    """A leaderboard as shown: its rows and F1avg pairs after the limit, and how many there were before.

    ``groups`` maps each (task, language) shown to the number of rows ranked in it (language None
    without by_language); ``pairs`` is the number of F1avg pairs before the limit."""

    metric: str
    rows: list[dict[str, Any]]
    groups: dict[tuple[str, str | None], int]
    f1avg: list[dict[str, Any]]
    pairs: int

    @property
    def ranked(self) -> int:
        return sum(self.groups.values())


def leaderboard(
    session: Session,
    *,
    experiment_id: int | None = None,
    task: str | None = None,
    metric: str = DEFAULT_METRIC,
    by_language: bool = False,
    limit: int | None = DEFAULT_LIMIT,
) -> Board:
    """Finished runs ranked by the CV mean of ``metric``: one row per run and task (and language with
    by_language), best first within each task (and language), NaN means last, ties by run id; the top
    ``limit`` of each (None: all), and the F1avg pairs of the same runs, best first.

    Each row: experiment, run, kind, task, language, the ranking metric's mean/std/folds, the CV means
    of the headline metrics (SHOWN) the run has, and with by_language the chrF of the experiment's
    translator in that language where the run reads translated queries. An unknown task or metric is
    bad input that names the valid ones."""
    task_code = checked_task(task)
    check_metric(session, metric)
    if limit is not None and limit < 1:
        raise InputError(f"must be at least 1, got {limit}", path="--limit")
    rows, groups = _ranked_rows(session, experiment_id, task_code, metric, by_language, limit)
    # F1avg pairs the overall rows of both tasks: a board of one task, or per language, has none.
    if metric.startswith("f1") and task_code is None and not by_language:
        averages, pairs = _f1avg(session, experiment_id, metric, limit)
    else:
        averages, pairs = [], 0
    return Board(metric=metric, rows=rows, groups=groups, f1avg=averages, pairs=pairs)


def checked_task(task: str | None) -> str | None:
    """The task code (QC, QI) of a --task value; anything else is bad input."""
    if task is None:
        return None
    if task.lower() not in TASKS:
        raise InputError(f"unknown task {task!r}; valid: {', '.join(TASKS)}", path="--task")
    return task.upper()


def check_metric(session: Session, metric: str) -> None:
    """A metric is valid if some run was scored on it or, while no run has been, if the evaluator writes it."""
    scored = select(Metric.id).where(Metric.name == metric, Metric.fold.is_(None), Metric.run_id.is_not(None)).limit(1)
    if session.scalar(scored) is not None:
        return
    valid = scored_metrics(session) or list(KNOWN_METRICS)
    if metric not in valid:
        raise InputError(f"unknown metric {metric!r}; valid: {', '.join(valid)}", path="--metric")


def scored_metrics(session: Session) -> list[str]:
    """The metrics runs were scored on, the evaluator's in its order first.

    Read one name at a time, each the next one up the ranking index, so that finding a dozen names
    does not read millions of rows."""
    names: list[str] = []
    while True:
        query = select(func.min(Metric.name)).where(Metric.fold.is_(None), Metric.run_id.is_not(None))
        if names:
            query = query.where(Metric.name > names[-1])
        name = session.scalar(query)
        if name is None:
            break
        names.append(name)
    order = {name: position for position, name in enumerate(KNOWN_METRICS)}
    return sorted(names, key=lambda name: (order.get(name, len(order)), name))


def _ranked_rows(
    session: Session, experiment_id: int | None, task_code: str | None, metric: str, by_language: bool, limit: int | None
) -> tuple[list[dict[str, Any]], dict[tuple[str, str | None], int]]:
    # 1. Rank every finished run's CV row of the metric (an index-only scan) and keep the top of each group.
    group = (Metric.task, Metric.language)
    conditions = [Metric.name == metric, Metric.fold.is_(None), Run.status == DONE]
    conditions.append(Metric.language.is_not(None) if by_language else Metric.language.is_(None))
    if experiment_id is not None:
        conditions.append(Run.experiment_id == experiment_id)
    if task_code is not None:
        conditions.append(Metric.task == task_code)
    ranked = (
        select(
            Metric.run_id,
            Metric.task,
            Metric.language,
            func.row_number().over(partition_by=group, order_by=(Metric.value.desc().nulls_last(), Metric.run_id)).label("place"),
            func.count().over(partition_by=group).label("group_rows"),
        )
        .join(Run, Run.id == Metric.run_id)
        .where(*conditions)
        .subquery("ranked")
    )
    top = select(ranked)
    if limit is not None:
        top = top.where(ranked.c.place <= limit)
    shown = session.execute(top.order_by(_text_order(session, ranked.c.task), _text_order(session, ranked.c.language), ranked.c.place)).all()
    if not shown:
        return [], {}
    groups = {(task, language): group_rows for _, task, language, _, group_rows in shown}

    # 2. What the rows shown show: their runs, and their CV rows of the ranking and headline metrics.
    run_ids = sorted({run_id for run_id, *_ in shown})
    runs = {
        r.id: r
        for r in session.execute(
            select(Run.id, Run.experiment_id, Experiment.name.label("experiment"), Run.name, Run.kind, Run.config["mode"].as_string().label("mode"))
            .join(Experiment, Experiment.id == Run.experiment_id)
            .where(Run.id.in_(run_ids))
        )
    }
    keys = {(run_id, task, language) for run_id, task, language, _, _ in shown}
    values = select(Metric.run_id, Metric.task, Metric.language, Metric.name, Metric.value, Metric.std, Metric.n).where(
        Metric.fold.is_(None), Metric.name.in_(sorted({metric, *SHOWN}))
    )
    if by_language:
        values = values.where(tuple_(Metric.run_id, Metric.language).in_(sorted({(k[0], k[2]) for k in keys})))
    else:
        values = values.where(Metric.run_id.in_(run_ids), Metric.language.is_(None))
    found: dict[tuple[int, str, str | None], dict[str, tuple[float | None, float | None, int | None]]] = defaultdict(dict)
    for run_id, task, language, name, value, std, n in session.execute(values.order_by(Metric.id)):
        if (run_id, task, language) in keys:
            found[(run_id, task, language)][name] = (value, std, n)
    chrf = _translation_quality(session, {runs[run_id].experiment_id for run_id in run_ids}) if by_language else {}

    rows = []
    for run_id, task, language, _, _ in shown:
        run, metrics = runs[run_id], found[(run_id, task, language)]
        mean, std, folds = metrics[metric]
        row: dict[str, Any] = {
            "experiment_id": run.experiment_id,
            "experiment": run.experiment,
            "run_id": run_id,
            "run": run.name,
            "kind": run.kind,
            "task": task,
            "language": language,
            "metric": metric,
            "mean": mean,
            "std": std,
            "folds": folds,
        }
        row.update({name: metrics[name][0] for name in SHOWN if name in metrics})
        reads_translations = run.kind == "model" and (run.mode or "orig") != "orig"
        quality = chrf.get((run.experiment_id, task, language))
        if reads_translations and quality is not None:
            row["chrf"] = quality
        rows.append(row)
    return rows, groups


def _translation_quality(session: Session, experiment_ids: set[int]) -> dict[tuple[int, str, str], float | None]:
    """(experiment, task, language) -> chrF of the experiment's translator on the reference set, where its
    translate stage measured one (the latest, where several did): per-language relevance beside
    per-language translation quality."""
    query = (
        select(Metric.experiment_id, Metric.task, Metric.language, Metric.value)
        .where(Metric.experiment_id.in_(sorted(experiment_ids)), Metric.name == CHRF, Metric.run_id.is_(None), Metric.language.is_not(None))
        .order_by(Metric.id)
    )
    return {(e, (t or "").upper(), lang): v for e, t, lang, v in session.execute(query)}


def _text_order(session: Session, column: Any) -> Any:
    """Order text as Python compares str (by code point), whatever collation the PostgreSQL database has."""
    return column.collate("C") if session.get_bind().dialect.name == "postgresql" else column


def _name_without_task(name: Any) -> ColumnElement[str]:
    """A run's name less its ``task=...`` part, comma-fenced (",r=8,"): what a QC run of a sweep shares
    with its QI twin. Run names are the sweep's settings, ``key=value`` joined by commas, so runs of
    one experiment that differ only in their task differ only in that part."""
    fenced: ColumnElement[str] = literal(",") + name + literal(",")
    for task in TASK_CODES:
        fenced = func.replace(fenced, f",task={task},", ",")
    return fenced


def _f1avg(session: Session, experiment_id: int | None, metric: str, limit: int | None) -> tuple[list[dict[str, Any]], int]:
    """F1avg = 0.5 F1_QC + 0.5 F1_QI for runs of one experiment that differ only in their task.

    A model for both tasks pairs with itself, never with the single-task runs beside it; baselines
    pair by name. Best first; ties in the order of the pairs' QC rows on the board."""
    conditions = [Metric.name == metric, Metric.fold.is_(None), Metric.language.is_(None), Metric.value.is_not(None), Run.status == DONE]
    if experiment_id is not None:
        conditions.append(Run.experiment_id == experiment_id)
    means = (
        select(
            Run.experiment_id,
            Run.kind,
            _name_without_task(Run.name).label("pair"),
            case((Run.task == "BOTH", Run.id), else_=0).label("both_run"),
            Run.id.label("run_id"),
            Run.name.label("run"),
            Metric.task,
            Metric.value,
        )
        .join(Run, Run.id == Metric.run_id)
        .where(*conditions)
        .subquery("means")
    )
    qc = func.max(case((means.c.task == "QC", means.c.value)))
    qi = func.max(case((means.c.task == "QI", means.c.value)))
    pairs = (
        select(
            means.c.experiment_id,
            means.c.both_run,
            func.min(means.c.run).label("run"),
            (literal(0.5) * qc + literal(0.5) * qi).label("f1avg"),
            qc.label("qc"),
            func.min(case((means.c.task == "QC", means.c.run_id))).label("qc_run"),
            func.count().over().label("pairs"),
        )
        .group_by(means.c.experiment_id, means.c.kind, means.c.pair, means.c.both_run)
        .having(and_(func.count(case((means.c.task == "QC", 1))) > 0, func.count(case((means.c.task == "QI", 1))) > 0))
        .order_by(literal_column("f1avg").desc(), literal_column("qc").desc(), literal_column("qc_run"))
    )
    if limit is not None:
        pairs = pairs.limit(limit)
    top = pairs.subquery("pairs")
    query = (
        select(top, Experiment.name.label("experiment"))
        .join(Experiment, Experiment.id == top.c.experiment_id)
        .order_by(top.c.f1avg.desc(), top.c.qc.desc(), top.c.qc_run)
    )
    averages, total = [], 0
    for r in session.execute(query).mappings():
        without_task = ",".join(part for part in r["run"].split(",") if not part.startswith("task="))
        averages.append(
            {
                "experiment_id": r["experiment_id"],
                "run": r["run"] if r["both_run"] else (without_task or r["experiment"]),
                "metric": metric,
                "f1avg": r["f1avg"],
            }
        )
        total = r["pairs"]
    return averages, total
