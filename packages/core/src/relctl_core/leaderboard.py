"""Leaderboards from the run database: runs ranked by the CV mean of a metric, baselines beside them.

The ranking, the filters, the F1avg pairs and the cut to the rows shown run in the database, on
indexes made for them (tables.py), and only the rows shown come back: a board reads about as much at ten
thousand experiments as at a hundred. ``limit`` keeps the top rows of each task (of each task and
language with ``by_language``), so that one task's runs never push the other's off the board; the
board says whether the limit left rows out and, where that is cheap to know, how many there were.

The statements are read_statements.py's; this module imports no SQLAlchemy, so that the read commands
can run them on the database's own driver (reads.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from relctl_core.errors import InputError
from relctl_core.reads import AlchemyReads, Reads, scalar, statements

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
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


def _reads(database: Any) -> Reads:
    if hasattr(database, "rows"):
        return database  # type: ignore[no-any-return]
    # Core statements, on a session's connection where given one: the ORM's execution path costs a
    # board of a thousand rows tens of milliseconds and brings nothing to rows that are not objects.
    from sqlalchemy.engine import Connection

    return AlchemyReads(database if isinstance(database, Connection) else database.connection())


@dataclass(frozen=True)
class Board:
    """A leaderboard as shown: its rows and F1avg pairs after the limit, and what the limit left out.

    ``ranked`` is the number of rows ranked before the limit where it was counted: for the overall
    board when asked, and for one experiment's, never for the per-language board of every experiment
    (ten times as many rows, and counting them would cost more than the board); ``cut`` says whether
    the limit left rows out. ``pairs`` is the number of F1avg pairs before the limit where counted
    (as ``ranked``), ``pairs_cut`` whether the limit left pairs out."""

    metric: str
    rows: list[dict[str, Any]]
    ranked: int | None
    cut: bool
    f1avg: list[dict[str, Any]]
    pairs: int | None
    pairs_cut: bool = False


def leaderboard(
    database: Connection | Session | Reads,
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
    ``limit`` of each (None: all), and the F1avg pairs of finished runs, best first.

    Each row: experiment, run, kind, task, language, the ranking metric's mean/std/folds and the
    95 % interval of the mean (low/high, None where not computed), the CV means
    of the headline metrics (SHOWN) the run has, on the overall board the decision threshold `relctl
    predict` applies (``threshold``, where the run has one), and with by_language the chrF of the
    experiment's translator in that language where the run reads translated queries. An unknown task or metric is
    bad input that names the valid ones.

    ``count`` asks for the number of rows and pairs ranked (Board.ranked, Board.pairs), for a note on
    what the limit left out: one more read over every experiment, so scripts that only want the rows
    skip it. One experiment's board is always counted (a few rows); the per-language board of every
    experiment never is (ten times the rows of the overall one)."""
    task_code = checked_task(task)
    reads = _reads(database)
    check_metric(reads, metric)
    if limit is not None and limit < 1:
        raise InputError(f"must be at least 1, got {limit}", path="--limit")
    counted = experiment_id is not None or (count and not by_language)
    rows, ranked, cut = _ranked_rows(reads, experiment_id, task_code, metric, by_language, limit, counted)
    # F1avg pairs the overall rows of both tasks: a board of one task, or per language, has none.
    if metric.startswith("f1") and task_code is None and not by_language:
        averages, pairs, pairs_cut = _f1avg(reads, experiment_id, metric, limit, counted)
    else:
        averages, pairs, pairs_cut = [], 0, False
    return Board(
        metric=metric, rows=rows, ranked=ranked, cut=cut, f1avg=averages, pairs=pairs, pairs_cut=pairs_cut
    )


def checked_task(task: str | None) -> str | None:
    """The task code (QC, QI) of a --task value; anything else is bad input."""
    if task is None:
        return None
    if task.lower() not in TASKS:
        raise InputError(f"unknown task {task!r}; valid: {', '.join(TASKS)}", path="--task")
    return task.upper()


def check_metric(database: Connection | Session | Reads, metric: str) -> None:
    """A metric is valid if some run was scored on it or, while no run has been, if the evaluator writes it."""
    reads = _reads(database)
    if scalar(reads, "scored_any", lambda: statements().scored_any(), {"metric": metric}) is not None:
        return
    valid = scored_metrics(reads) or list(KNOWN_METRICS)
    if metric not in valid:
        raise InputError(f"unknown metric {metric!r}; valid: {', '.join(valid)}", path="--metric")


def scored_metrics(database: Connection | Session | Reads) -> list[str]:
    """The metrics runs were scored on, the evaluator's in its order first.

    Read one name at a time, each the next one up the ranking index, so that finding a dozen names
    does not read millions of rows."""
    reads = _reads(database)
    names: list[str] = []
    while True:
        after = bool(names)
        params = {"after": names[-1]} if after else {}
        name = scalar(reads, f"scored_name:{after}", lambda after=after: statements().scored_name(after), params)
        if name is None:
            break
        names.append(name)
    order = {name: position for position, name in enumerate(KNOWN_METRICS)}
    return sorted(names, key=lambda name: (order.get(name, len(order)), name))


def _ranked_rows(
    reads: Reads,
    experiment_id: int | None,
    task_code: str | None,
    metric: str,
    by_language: bool,
    limit: int | None,
    counted: bool,
) -> tuple[list[dict[str, Any]], int | None, bool]:
    """(the rows shown, the rows ranked where counted, whether the limit left rows out)."""
    has_experiment, has_task = experiment_id is not None, task_code is not None
    filters = {
        "metric": metric,
        **({"experiment": experiment_id} if has_experiment else {}),
        **({"task": task_code} if has_task else {}),
    }
    shape = f"{has_experiment}:{has_task}:{by_language}"
    # 1. The groups (language, task) of the board.
    ranked: int | None = None
    if counted:
        found = reads.rows(
            f"group_counts:{shape}",
            lambda: statements().group_counts(has_experiment, has_task, by_language),
            filters,
        )
        groups, ranked = [(language, task) for language, task, _ in found], sum(rows for _, _, rows in found)
    else:
        groups = _groups_along_the_index(reads, filters, has_experiment, has_task, by_language)
    if not groups:
        return [], ranked, False

    # 2. In one statement, the top of each group (one row more than the limit tells a cut group), their
    # runs, and the CV rows of the ranking and headline metrics.
    shown = sorted({metric, *SHOWN, THRESHOLD})
    params: dict[str, Any] = {**filters, **{f"shown_{i}": name for i, name in enumerate(shown)}}
    for i, (language, task) in enumerate(groups):
        params[f"task_{i}"] = task
        if by_language:
            params[f"language_{i}"] = language
    if limit is not None:
        params["limit"] = limit + 1
    found = reads.rows(
        f"board:{len(groups)}:{shape}:{limit is not None}:{len(shown)}",
        lambda: statements().board(
            len(groups), has_experiment, has_task, by_language, limit is not None, len(shown)
        ),
        params,
    )
    read: dict[tuple[int, str, str | None], Any] = {}
    shown_values: dict[tuple[int, str, str | None], dict[str, tuple[Any, ...]]] = defaultdict(dict)
    for r in found:
        key = (r.run_id, r.task, r.language)
        read[key] = r
        if r.name is not None:
            shown_values[key][r.name] = (r.value, r.std, r.n, r.low, r.high)

    by_group: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
    for r in read.values():
        by_group[(r.task, r.language)].append(r)
    cut = False
    rows: list[dict[str, Any]] = []
    chrf = _translation_quality(reads, {r.experiment_id for r in read.values()}) if by_language else {}
    # Groups as Python orders text (whatever the database's collation), best first within each.
    for group in sorted(by_group, key=lambda key: (key[0], key[1] or "")):
        best_first = sorted(by_group[group], key=lambda r: (r.mean is None, -(r.mean or 0.0), r.run_id))
        cut = cut or (limit is not None and len(best_first) > limit)
        for r in best_first[:limit]:
            values = shown_values[(r.run_id, r.task, r.language)]
            mean, std, folds, low, high = values[metric]
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
            row.update({name: values[name][0] for name in SHOWN if name in values})
            if THRESHOLD in values and not by_language:  # tuned on all of a task's rows: no language has one
                row["threshold"] = values[THRESHOLD][0]
            reads_translations = r.kind == "model" and (r.mode or "orig") != "orig"
            quality = chrf.get((r.experiment_id, r.task, r.language))
            if reads_translations and quality is not None:
                row["chrf"] = quality
            rows.append(row)
    return rows, ranked, cut


def _groups_along_the_index(
    reads: Reads, filters: dict[str, Any], has_experiment: bool, has_task: bool, by_language: bool
) -> list[tuple[str | None, str]]:
    """The (language, task) groups that hold rows, each found by one step along the ranking index past
    the one before: a board's groups without reading its rows (hundreds of thousands per language)."""
    groups: list[tuple[str | None, str]] = []
    while True:
        past = bool(groups)
        params = dict(filters)
        if past:
            params["after_task"] = groups[-1][1]
            if by_language:
                params["after_language"] = groups[-1][0]
        found = reads.rows(
            f"next_group:{has_experiment}:{has_task}:{by_language}:{past}",
            lambda past=past: statements().next_group(has_experiment, has_task, by_language, past),
            params,
        )
        if not found:
            return groups
        groups.append((found[0][0], found[0][1]))


def _translation_quality(reads: Reads, experiment_ids: set[int]) -> dict[tuple[int, str, str], float | None]:
    """(experiment, task, language) -> chrF of the experiment's translator on the reference set, where its
    translate stage measured one (the latest, where several did): per-language relevance beside
    per-language translation quality."""
    ids = sorted(experiment_ids)
    if not ids:
        return {}
    # Statement shapes by powers of two (the last id repeated), so that a few shapes serve every board.
    size = 1 << max(0, len(ids) - 1).bit_length()
    params = {f"experiment_{i}": ids[min(i, len(ids) - 1)] for i in range(size)}
    found = reads.rows(f"translation_quality:{size}", lambda: statements().translation_quality(size), params)
    return {(e, (t or "").upper(), lang): v for e, t, lang, v in found}


def _f1avg(
    reads: Reads, experiment_id: int | None, metric: str, limit: int | None, counted: bool
) -> tuple[list[dict[str, Any]], int | None, bool]:
    """F1avg = 0.5 F1_QC + 0.5 F1_QI of the stored pairs (relctl_core.pairs) whose runs are both done:
    (the top ``limit``, best first, the pairs there are where counted, whether the limit left some out)."""
    has_experiment = experiment_id is not None
    params: dict[str, Any] = {"metric": metric, **({"experiment": experiment_id} if has_experiment else {})}
    if limit is not None:
        params["limit"] = limit + 1
    found = reads.rows(
        f"top_pairs:{has_experiment}:{limit is not None}",
        lambda: statements().top_pairs(has_experiment, limit is not None),
        params,
    )
    cut = limit is not None and len(found) > limit
    averages = []
    for r in found[:limit]:
        without_task = ",".join(part for part in r.run.split(",") if not part.startswith("task="))
        averages.append(
            {
                "experiment_id": r.experiment_id,
                "run": r.run if r.both else (without_task or r.experiment),
                "metric": metric,
                "f1avg": r.f1avg,
            }
        )
    total = None
    if counted:
        count_params = {k: v for k, v in params.items() if k != "limit"}
        total = scalar(
            reads,
            f"pair_count:{has_experiment}",
            lambda: statements().pair_count(has_experiment),
            count_params,
        )
    elif not cut:
        total = len(averages)
    return averages, total, cut


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
    swept = sorted(
        {
            key
            for settings in settings_of.values()
            for key in settings
            if len({s.get(key) for s in settings_of.values()}) > 1
        }
    )
    if not swept:
        return []
    table = [
        {"task": row["task"], **{key: settings_of[row["run_id"]].get(key) for key in swept}, "run_id": row["run_id"], "run": row["run"],
         "mean": row["mean"], "low": row.get("low"), "high": row.get("high")}
        for row in rows
        if row["run_id"] in settings_of and row["language"] is None
    ]  # fmt: skip
    return sorted(table, key=lambda r: (r["task"], *(_setting_order(r[key] or "") for key in swept)))
