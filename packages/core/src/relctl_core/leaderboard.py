"""Leaderboards from the run database: runs ranked by the CV mean of a metric, baselines beside them.

The ranking, the filters, the F1avg pairing and the cut to the rows shown run in the database, on
indexes made for them (tables.py), and only the rows shown come back: a board reads about as much at ten
thousand experiments as at a hundred, but for the F1avg pairing, which must see every finished run.
``limit`` keeps the top rows of each task (of each task and language with ``by_language``), so that
one task's runs never push the other's off the board; the board says whether the limit left rows out
and, where that is cheap to know, how many there were.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    func,
    literal,
    literal_column,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.engine import Connection

from relctl_core.errors import InputError
from relctl_core.names import TASK_CODES
from relctl_core.tables import DONE, experiments, metrics, runs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

DEFAULT_METRIC = "f1@oof"
DEFAULT_LIMIT = 50
SHOWN = ("f1@oof", "f1@0.5", "roc_auc", "pr_auc")
TASKS = ("qc", "qi")  # the tasks runs are scored on (a model for both is scored on each)
CHRF = "translation.chrf"
# The decision threshold `relctl predict` applies: F1's best on a run's out-of-fold rows pooled over its folds.
THRESHOLD = "threshold@oof.pooled"
# What the evaluator writes for every run (relctl_evaluator.metrics.metric_names(), in its order; a
# cross-package test keeps the two alike): what one may rank by before any run has been scored.
KNOWN_METRICS = (
    "f1@0.5", "precision@0.5", "recall@0.5", "f1@oof", "precision@oof", "recall@oof", "threshold@oof",
    "roc_auc", "pr_auc", "positive_rate", "rows", THRESHOLD,
)  # fmt: skip


@dataclass(frozen=True)
class Board:
    """A leaderboard as shown: its rows and F1avg pairs after the limit, and what the limit left out.

    ``ranked`` is the number of rows ranked before the limit where it was counted: always for the
    overall board and for one experiment's, not for the per-language board of every experiment (ten
    times as many rows, and counting them would cost more than the board); ``cut`` says whether the
    limit left rows out. ``pairs`` is the number of F1avg pairs before the limit."""

    metric: str
    rows: list[dict[str, Any]]
    ranked: int | None
    cut: bool
    f1avg: list[dict[str, Any]]
    pairs: int


def leaderboard(
    database: Connection | Session,
    *,
    experiment_id: int | None = None,
    task: str | None = None,
    metric: str = DEFAULT_METRIC,
    by_language: bool = False,
    limit: int | None = DEFAULT_LIMIT,
    count: bool = True,
) -> Board:
    """Finished runs ranked by the CV mean of ``metric``: one row per run and task (and language with
    by_language), best first within each task (and language), NaN means last, ties by run id; the top
    ``limit`` of each (None: all), and the F1avg pairs of the same runs, best first.

    Each row: experiment, run, kind, task, language, the ranking metric's mean/std/folds and the
    95 % interval of the mean (low/high, None where not computed), the CV means
    of the headline metrics (SHOWN) the run has, on the overall board the decision threshold `relctl
    predict` applies (``threshold``, where the run has one), and with by_language the chrF of the
    experiment's translator in that language where the run reads translated queries. An unknown task or metric is
    bad input that names the valid ones.

    ``count`` asks for the number of rows ranked (Board.ranked), for a note on what the limit left
    out: one more read of the ranking index over every experiment, so scripts that only want the rows
    skip it. One experiment's board is always counted (a few rows); the per-language board of every
    experiment never is (ten times the rows of the overall one)."""
    task_code = checked_task(task)
    # Core statements, on a session's connection where given one: the ORM's execution path costs a
    # board of a thousand rows tens of milliseconds and brings nothing to rows that are not objects.
    connection = database if isinstance(database, Connection) else database.connection()
    check_metric(connection, metric)
    if limit is not None and limit < 1:
        raise InputError(f"must be at least 1, got {limit}", path="--limit")
    counted = experiment_id is not None or (count and not by_language)
    rows, ranked, cut = _ranked_rows(connection, experiment_id, task_code, metric, by_language, limit, counted)
    # F1avg pairs the overall rows of both tasks: a board of one task, or per language, has none.
    if metric.startswith("f1") and task_code is None and not by_language:
        averages, pairs = _f1avg(connection, experiment_id, metric, limit)
    else:
        averages, pairs = [], 0
    return Board(metric=metric, rows=rows, ranked=ranked, cut=cut, f1avg=averages, pairs=pairs)


def checked_task(task: str | None) -> str | None:
    """The task code (QC, QI) of a --task value; anything else is bad input."""
    if task is None:
        return None
    if task.lower() not in TASKS:
        raise InputError(f"unknown task {task!r}; valid: {', '.join(TASKS)}", path="--task")
    return task.upper()


def check_metric(database: Connection | Session, metric: str) -> None:
    """A metric is valid if some run was scored on it or, while no run has been, if the evaluator writes it."""
    scored = select(metrics.c.id).where(metrics.c.name == metric, metrics.c.fold.is_(None), metrics.c.run_id.is_not(None)).limit(1)
    if database.scalar(scored) is not None:
        return
    valid = scored_metrics(database) or list(KNOWN_METRICS)
    if metric not in valid:
        raise InputError(f"unknown metric {metric!r}; valid: {', '.join(valid)}", path="--metric")


def scored_metrics(database: Connection | Session) -> list[str]:
    """The metrics runs were scored on, the evaluator's in its order first.

    Read one name at a time, each the next one up the ranking index, so that finding a dozen names
    does not read millions of rows."""
    names: list[str] = []
    while True:
        query = select(func.min(metrics.c.name)).where(metrics.c.fold.is_(None), metrics.c.run_id.is_not(None))
        if names:
            query = query.where(metrics.c.name > names[-1])
        name = database.scalar(query)
        if name is None:
            break
        names.append(name)
    order = {name: position for position, name in enumerate(KNOWN_METRICS)}
    return sorted(names, key=lambda name: (order.get(name, len(order)), name))


def _ranked_rows(
    connection: Connection, experiment_id: int | None, task_code: str | None, metric: str, by_language: bool, limit: int | None, counted: bool
) -> tuple[list[dict[str, Any]], int | None, bool]:
    """(the rows shown, the rows ranked where counted, whether the limit left rows out)."""
    # 1. The top of each (language, task) group. The ranking index holds a group best first (defined
    # means by value, descending, then run id; NaN means, ranked last, by run id), so each top is read
    # off the start of its range and nothing is sorted; one row more than the limit tells a cut group.
    unfinished = select(runs.c.id).where(runs.c.status != DONE).cte("unfinished")
    conditions = [
        metrics.c.name == metric,
        metrics.c.fold.is_(None),
        metrics.c.language.is_not(None) if by_language else metrics.c.language.is_(None),
        not_unfinished := metrics.c.run_id.not_in(select(unfinished.c.id)),
    ]
    if experiment_id is not None:
        conditions.append(metrics.c.run_id.in_(select(runs.c.id).where(runs.c.experiment_id == experiment_id)))
    if task_code is not None:
        conditions.append(metrics.c.task == task_code)
    ranked: int | None = None
    if counted:
        counts = select(metrics.c.language, metrics.c.task, func.count()).where(*conditions).group_by(metrics.c.language, metrics.c.task)
        found = connection.execute(counts).all()
        groups, ranked = [(language, task) for language, task, _ in found], sum(rows for _, _, rows in found)
    else:
        # Unfinished runs are left to the tops: a group of nothing else comes out of them empty.
        groups = _groups_along_the_index(connection, [c for c in conditions if c is not not_unfinished])
    if not groups:
        return [], ranked, False
    tops = []
    columns = (metrics.c.run_id, metrics.c.task, metrics.c.language, metrics.c.value)
    # Ordered as the index is, leading columns included: PostgreSQL takes `language IS NULL` for no
    # equality, and would sort the whole group to order it by value alone.
    index_order = (metrics.c.language, metrics.c.task, metrics.c.value.desc(), metrics.c.run_id)
    more = None if limit is None else limit + 1
    for language, task in groups:
        in_group = [*conditions, metrics.c.task == task] + ([] if language is None else [metrics.c.language == language])
        tops.append(select(*columns).where(*in_group, metrics.c.value.is_not(None)).order_by(*index_order).limit(more))
        tops.append(select(*columns).where(*in_group, metrics.c.value.is_(None)).order_by(*index_order).limit(more))
    # Each top a subquery of its own, so that its ORDER BY and LIMIT hold on SQLite too.
    top = union_all(*(select(*t.subquery().c) for t in tops)).subquery("top")

    # 2. In the same statement, what the rows read show: their runs, and by key their CV rows of the
    # ranking and headline metrics (a handful per row, not the ranking's hundreds of thousands).
    shown_metric = metrics.alias("shown")
    query = (
        select(
            top.c.run_id,
            top.c.task,
            top.c.language,
            top.c.value.label("mean"),
            runs.c.experiment_id,
            experiments.c.name.label("experiment"),
            runs.c.name.label("run"),
            runs.c.kind,
            runs.c.config["mode"].as_string().label("mode"),
            shown_metric.c.name,
            shown_metric.c.value,
            shown_metric.c.std,
            shown_metric.c.n,
            shown_metric.c.low,
            shown_metric.c.high,
        )
        .select_from(top)
        .join(runs, runs.c.id == top.c.run_id)
        .join(experiments, experiments.c.id == runs.c.experiment_id)
        .outerjoin(
            shown_metric,
            and_(
                shown_metric.c.run_id == top.c.run_id,
                shown_metric.c.name.in_(sorted({metric, *SHOWN, THRESHOLD})),
                shown_metric.c.fold.is_(None),
                shown_metric.c.language == top.c.language if by_language else shown_metric.c.language.is_(None),
                shown_metric.c.task == top.c.task,
            ),
        )
    )
    read: dict[tuple[int, str, str | None], Any] = {}
    shown_values: dict[tuple[int, str, str | None], dict[str, tuple[Any, ...]]] = defaultdict(dict)
    for r in connection.execute(query):
        key = (r.run_id, r.task, r.language)
        read[key] = r
        if r.name is not None:
            shown_values[key][r.name] = (r.value, r.std, r.n, r.low, r.high)

    by_group: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
    for r in read.values():
        by_group[(r.task, r.language)].append(r)
    cut = False
    rows: list[dict[str, Any]] = []
    chrf = _translation_quality(connection, {r.experiment_id for r in read.values()}) if by_language else {}
    # Groups as Python orders text (whatever the database's collation), best first within each.
    for group in sorted(by_group, key=lambda key: (key[0], key[1] or "")):
        best_first = sorted(by_group[group], key=lambda r: (r.mean is None, -(r.mean or 0.0), r.run_id))
        cut = cut or (limit is not None and len(best_first) > limit)
        for r in best_first[:limit]:
            found = shown_values[(r.run_id, r.task, r.language)]
            mean, std, folds, low, high = found[metric]
            row: dict[str, Any] = {
                "experiment_id": r.experiment_id,
                "experiment": r.experiment,
                "run_id": r.run_id,
                "run": r.run,
                "kind": r.kind,
                "task": r.task,
                "language": r.language,
                "metric": metric,
                "mean": mean,
                "std": std,
                "folds": folds,
                # The 95 % interval of the mean, resampled by query, where the evaluator computed one.
                "low": low,
                "high": high,
            }
            row.update({name: found[name][0] for name in SHOWN if name in found})
            if THRESHOLD in found and not by_language:  # tuned on all of a task's rows: no language has one
                row["threshold"] = found[THRESHOLD][0]
            reads_translations = r.kind == "model" and (r.mode or "orig") != "orig"
            quality = chrf.get((r.experiment_id, r.task, r.language))
            if reads_translations and quality is not None:
                row["chrf"] = quality
            rows.append(row)
    return rows, ranked, cut


def _groups_along_the_index(connection: Connection, conditions: list[Any]) -> list[tuple[str | None, str]]:
    """The (language, task) groups that hold rows, each found by one step along the ranking index past
    the one before: a board's groups without reading its rows (hundreds of thousands per language)."""
    groups: list[tuple[str | None, str]] = []
    while True:
        query = select(metrics.c.language, metrics.c.task).where(*conditions).order_by(metrics.c.language, metrics.c.task).limit(1)
        if groups:
            language, task = groups[-1]
            # All languages are NULL on the overall board (and none on the per-language one).
            past = metrics.c.task > task if language is None else tuple_(metrics.c.language, metrics.c.task) > tuple_(language, task)
            query = query.where(past)
        found = connection.execute(query).first()
        if found is None:
            return groups
        groups.append((found[0], found[1]))


def _translation_quality(connection: Connection, experiment_ids: set[int]) -> dict[tuple[int, str, str], float | None]:
    """(experiment, task, language) -> chrF of the experiment's translator on the reference set, where its
    translate stage measured one (the latest, where several did): per-language relevance beside
    per-language translation quality."""
    query = (
        select(metrics.c.experiment_id, metrics.c.task, metrics.c.language, metrics.c.value)
        .where(metrics.c.experiment_id.in_(sorted(experiment_ids)), metrics.c.name == CHRF, metrics.c.run_id.is_(None), metrics.c.language.is_not(None))
        .order_by(metrics.c.id)
    )
    return {(e, (t or "").upper(), lang): v for e, t, lang, v in connection.execute(query)}


def _name_without_task(name: Any) -> ColumnElement[str]:
    """A run's name less its ``task=...`` part, comma-fenced (",r=8,"): what a QC run of a sweep shares
    with its QI twin. Run names are the sweep's settings, ``key=value`` joined by commas, so runs of
    one experiment that differ only in their task differ only in that part."""
    fenced: ColumnElement[str] = literal(",") + name + literal(",")
    for task in TASK_CODES:
        fenced = func.replace(fenced, f",task={task},", ",")
    return fenced


def _f1avg(connection: Connection, experiment_id: int | None, metric: str, limit: int | None) -> tuple[list[dict[str, Any]], int]:
    """F1avg = 0.5 F1_QC + 0.5 F1_QI for runs of one experiment that differ only in their task.

    A model for both tasks pairs with itself, never with the single-task runs beside it; baselines
    pair by name. Best first; ties in the order of the pairs' QC rows on the board."""
    conditions = [metrics.c.name == metric, metrics.c.fold.is_(None), metrics.c.language.is_(None), metrics.c.value.is_not(None), runs.c.status == DONE]
    if experiment_id is not None:
        conditions.append(runs.c.experiment_id == experiment_id)
    means = (
        select(
            runs.c.experiment_id,
            runs.c.kind,
            _name_without_task(runs.c.name).label("pair"),
            case((runs.c.task == "BOTH", runs.c.id), else_=0).label("both_run"),
            runs.c.id.label("run_id"),
            metrics.c.task,
            metrics.c.value,
        )
        .join(runs, runs.c.id == metrics.c.run_id)
        .where(*conditions)
        .subquery("means")
    )
    qc = func.max(case((means.c.task == "QC", means.c.value)))
    qi = func.max(case((means.c.task == "QI", means.c.value)))
    pairs = (
        select(
            means.c.experiment_id,
            means.c.both_run,
            (literal(0.5) * qc + literal(0.5) * qi).label("f1avg"),
            qc.label("qc"),
            func.min(case((means.c.task == "QC", means.c.run_id))).label("qc_run"),
            func.count().over().label("pairs"),
        )
        .group_by(means.c.experiment_id, means.c.kind, means.c.pair, means.c.both_run)
        # Both tasks present: the aggregates already computed say so (means are never NULL here).
        .having(and_(qc.is_not(None), qi.is_not(None)))
        .order_by(literal_column("f1avg").desc(), literal_column("qc").desc(), literal_column("qc_run"))
    )
    if limit is not None:
        pairs = pairs.limit(limit)
    top = pairs.subquery("pairs")
    # The names, of the pairs shown only: a pair is named by its QC run, less its task.
    query = (
        select(top, runs.c.name.label("run"), experiments.c.name.label("experiment"))
        .join(runs, runs.c.id == top.c.qc_run)
        .join(experiments, experiments.c.id == top.c.experiment_id)
        .order_by(top.c.f1avg.desc(), top.c.qc.desc(), top.c.qc_run)
    )
    averages, total = [], 0
    for r in connection.execute(query).mappings():
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


def _setting_order(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def sweep_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One experiment's models by the values of what its sweep varied (LoRA rank, lr, ...): the ranking
    metric against each combination, with its interval, in the order of the values rather than of the
    scores. Empty when the board's models differ in nothing but their task.

    A model's settings are read off its run name (``key=value`` joined by commas, as the sweep names
    runs); ``task`` is a column of its own."""
    settings_of: dict[int, dict[str, str]] = {}
    for row in rows:
        if row["kind"] != "model" or row["language"] is not None:
            continue
        parts = [part.split("=", 1) for part in row["run"].split(",")]
        if all(len(part) == 2 for part in parts):
            settings_of[row["run_id"]] = {key: value for key, value in parts if key != "task"}
    swept = sorted({key for settings in settings_of.values() for key in settings if len({s.get(key) for s in settings_of.values()}) > 1})
    if not swept:
        return []
    table = [
        {"task": row["task"], **{key: settings_of[row["run_id"]].get(key) for key in swept}, "run_id": row["run_id"], "run": row["run"],
         "mean": row["mean"], "low": row.get("low"), "high": row.get("high")}
        for row in rows
        if row["run_id"] in settings_of and row["language"] is None
    ]  # fmt: skip
    return sorted(table, key=lambda r: (r["task"], *(_setting_order(r[key] or "") for key in swept)))
