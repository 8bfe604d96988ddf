"""The statements of the read commands (`relctl leaderboard`, `relctl list`), in SQLAlchemy Core.

Each builder makes one statement *shape*: which filters it has, how many groups it reads. Every value
that changes from call to call (the metric, the task, an experiment id, a group's language, the limit)
is a named bound parameter, never part of the statement, so that a shape compiled once serves every
call of that shape (relctl_core.reads keeps the compiled text). What is not a parameter is constant:
the states, the JSON path of a run's mode, the names of the tasks.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    select,
    tuple_,
    union_all,
)

from relctl_core.names import TASK_CODES
from relctl_core.states import DONE
from relctl_core.tables import experiments, metrics, pairs, runs


def _limit() -> Any:
    return bindparam("limit", type_=Integer)


def scored_any() -> Select[Any]:
    """Some run's CV row of :metric, if any run was scored on it."""
    return (
        select(metrics.c.id)
        .where(metrics.c.name == bindparam("metric"), metrics.c.fold.is_(None), metrics.c.run_id.is_not(None))
        .limit(1)
    )


def scored_name(after: bool) -> Select[Any]:
    """The first metric name runs were scored on (past :after): one step up the ranking index."""
    query = select(func.min(metrics.c.name)).where(metrics.c.fold.is_(None), metrics.c.run_id.is_not(None))
    return query.where(metrics.c.name > bindparam("after")) if after else query


def _conditions(experiment: bool, task: bool, by_language: bool, *, finished: bool = True) -> list[Any]:
    """The CV rows of :metric a board ranks: overall or per language, of one experiment, of one task;
    with ``finished``, only those of finished runs."""
    conditions = [
        metrics.c.name == bindparam("metric"),
        metrics.c.fold.is_(None),
        metrics.c.language.is_not(None) if by_language else metrics.c.language.is_(None),
    ]
    if finished:
        unfinished = select(runs.c.id).where(runs.c.status != DONE).cte("unfinished")
        conditions.append(metrics.c.run_id.not_in(select(unfinished.c.id)))
    if experiment:
        conditions.append(
            metrics.c.run_id.in_(select(runs.c.id).where(runs.c.experiment_id == bindparam("experiment")))
        )
    if task:
        conditions.append(metrics.c.task == bindparam("task"))
    return conditions


def group_counts(experiment: bool, task: bool, by_language: bool) -> Select[Any]:
    """(language, task, rows ranked) of each group of the board."""
    c = metrics.c
    return (
        select(c.language, c.task, func.count())
        .where(*_conditions(experiment, task, by_language))
        .group_by(c.language, c.task)
    )


def next_group(experiment: bool, task: bool, by_language: bool, past: bool) -> Select[Any]:
    """The (language, task) group of the board that follows (:after_language, :after_task) along the
    ranking index, or its first with ``past`` false: a board's groups without reading its rows.
    Unfinished runs are left to the tops: a group of nothing else comes out of them empty."""
    c = metrics.c
    query = (
        select(c.language, c.task)
        .where(*_conditions(experiment, task, by_language, finished=False))
        .order_by(c.language, c.task)
        .limit(1)
    )
    if not past:
        return query
    # All languages are NULL on the overall board (and none on the per-language one).
    if by_language:
        return query.where(
            tuple_(c.language, c.task) > tuple_(bindparam("after_language"), bindparam("after_task"))
        )
    return query.where(c.task > bindparam("after_task"))


def board(
    groups: int, experiment: bool, task: bool, by_language: bool, limited: bool, shown: int
) -> Select[Any]:
    """The top rows of ``groups`` groups (the i-th: :task_i, and :language_i per language), :limit + 1
    of each where ``limited``, with their runs and their CV rows of the ``shown`` metrics :shown_0...

    The ranking index holds a group best first (defined means by value, descending, then run id; NaN
    means, ranked last, by run id), so each top is read off the start of its range and nothing is
    sorted. The rows shown then get their runs and, by key, their headline metrics: a handful per
    row, not the ranking's hundreds of thousands."""
    conditions = _conditions(experiment, task, by_language)
    columns = (metrics.c.run_id, metrics.c.task, metrics.c.language, metrics.c.value)
    # Ordered as the index is, leading columns included: PostgreSQL takes `language IS NULL` for no
    # equality, and would sort the whole group to order it by value alone.
    index_order = (metrics.c.language, metrics.c.task, metrics.c.value.desc(), metrics.c.run_id)
    tops = []
    for i in range(groups):
        in_group = [*conditions, metrics.c.task == bindparam(f"task_{i}")]
        if by_language:
            in_group.append(metrics.c.language == bindparam(f"language_{i}"))
        for defined in (metrics.c.value.is_not(None), metrics.c.value.is_(None)):
            top = select(*columns).where(*in_group, defined).order_by(*index_order)
            tops.append(top.limit(_limit()) if limited else top)
    # Each top a subquery of its own, so that its ORDER BY and LIMIT hold on SQLite too.
    top = union_all(*(select(*t.subquery().c) for t in tops)).subquery("top")
    shown_metric = metrics.alias("shown")
    return (
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
                shown_metric.c.name.in_([bindparam(f"shown_{i}") for i in range(shown)]),
                shown_metric.c.fold.is_(None),
                shown_metric.c.language == top.c.language
                if by_language
                else shown_metric.c.language.is_(None),
                shown_metric.c.task == top.c.task,
            ),
        )
    )


def translation_quality(experiments_read: int) -> Select[Any]:
    """(experiment, task, language, chrF) of the translate stages of :experiment_0... (``experiments_read``
    of them), oldest first."""
    ids = [bindparam(f"experiment_{i}") for i in range(experiments_read)]
    return (
        select(metrics.c.experiment_id, metrics.c.task, metrics.c.language, metrics.c.value)
        .where(
            metrics.c.experiment_id.in_(ids),
            metrics.c.name == "translation.chrf",
            metrics.c.run_id.is_(None),
            metrics.c.language.is_not(None),
        )
        .order_by(metrics.c.id)
    )


def _name_without_task(name: Any) -> ColumnElement[str]:
    """A run's name less its ``task=...`` part, comma-fenced (",r=8,"): what a QC run of a sweep shares
    with its QI twin. Run names are the sweep's settings, ``key=value`` joined by commas, so runs of
    one experiment that differ only in their task differ only in that part."""
    fenced: ColumnElement[str] = literal(",") + name + literal(",")
    for code in TASK_CODES:
        fenced = func.replace(fenced, f",task={code},", ",")
    return fenced


def pairing(experiment: bool) -> Select[Any]:
    """The pairs table's rows, computed from the CV means of every F1 metric (of :experiment): runs of
    one experiment that differ only in their task. A model for both tasks pairs with itself, never
    with the single-task runs beside it; baselines pair by name."""
    conditions = [
        metrics.c.name.like("f1%"),
        metrics.c.fold.is_(None),
        metrics.c.language.is_(None),
        metrics.c.value.is_not(None),
    ]
    if experiment:
        conditions.append(runs.c.experiment_id == bindparam("experiment"))
    means = (
        select(
            runs.c.experiment_id,
            runs.c.kind,
            _name_without_task(runs.c.name).label("pair"),
            case((runs.c.task == "BOTH", runs.c.id), else_=0).label("both_run"),
            runs.c.id.label("run_id"),
            metrics.c.task,
            metrics.c.name,
            metrics.c.value,
        )
        .join(runs, runs.c.id == metrics.c.run_id)
        .where(*conditions)
        .subquery("means")
    )
    qc = func.max(case((means.c.task == "QC", means.c.value)))
    qi = func.max(case((means.c.task == "QI", means.c.value)))
    return (
        select(
            means.c.experiment_id,
            means.c.name,
            func.min(case((means.c.task == "QC", means.c.run_id))),
            func.min(case((means.c.task == "QI", means.c.run_id))),
            means.c.both_run != 0,
            literal(0.5) * qc + literal(0.5) * qi,
            qc,
        )
        .group_by(means.c.experiment_id, means.c.name, means.c.kind, means.c.pair, means.c.both_run)
        # Both tasks present: the aggregates already computed say so (means are never NULL here).
        .having(and_(qc.is_not(None), qi.is_not(None)))
    )


def top_pairs(experiment: bool, limited: bool) -> Select[Any]:
    """The F1avg pairs of :metric whose runs are both done, best first (ties: the better QC, then the
    QC run's id), :limit + 1 of them where ``limited``; each named by its QC run."""
    qc_run, qi_run = runs.alias("qc_run"), runs.alias("qi_run")
    conditions = [pairs.c.metric == bindparam("metric"), qc_run.c.status == DONE, qi_run.c.status == DONE]
    if experiment:
        conditions.append(pairs.c.experiment_id == bindparam("experiment"))
    query = (
        select(
            pairs.c.experiment_id,
            pairs.c.both,
            pairs.c.value.label("f1avg"),
            qc_run.c.name.label("run"),
            experiments.c.name.label("experiment"),
        )
        .select_from(pairs)
        .join(qc_run, qc_run.c.id == pairs.c.qc_run_id)
        .join(qi_run, qi_run.c.id == pairs.c.qi_run_id)
        .join(experiments, experiments.c.id == pairs.c.experiment_id)
        .where(*conditions)
        .order_by(pairs.c.metric, pairs.c.value.desc(), pairs.c.qc.desc(), pairs.c.qc_run_id)
    )
    return query.limit(_limit()) if limited else query


def pair_count(experiment: bool) -> Select[Any]:
    """How many pairs top_pairs has without a limit."""
    return select(func.count()).select_from(top_pairs(experiment, limited=False).order_by(None).subquery())


def recent_experiments() -> Select[Any]:
    """The newest :limit experiments, with their run counts (only those leave the database)."""
    e = experiments.c
    run_count = (
        select(func.count(runs.c.id))
        .where(runs.c.experiment_id == e.id)
        .correlate(experiments)
        .scalar_subquery()
    )
    query = select(e.id, e.name, e.status, run_count.label("runs"), e.created_at, e.finished_at)
    return query.order_by(e.id.desc()).limit(_limit())


def experiment_count() -> Select[Any]:
    return select(func.count(experiments.c.id))
