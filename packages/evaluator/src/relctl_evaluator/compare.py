"""`relctl compare`: two runs on the same out-of-fold rows, with the interval of their difference.

A run's rows are read as its evaluate stage read them (an ensemble's combined over its members), with
each row's query from the dataset it was split from: the bootstrap resamples whole queries.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import click
import numpy as np
from relctl_core.db import DONE, Run, Stage, session_scope
from relctl_core.errors import InputError
from relctl_core.payloads import EvaluatePayload
from relctl_core.settings import Settings, load_settings
from sqlalchemy import select
from sqlalchemy.orm import Session

from relctl_evaluator.stats import (
    DEFAULT_PERMUTATIONS,
    DEFAULT_RESAMPLES,
    RESAMPLED,
    Comparison,
    ScoredRows,
    comparisons,
)


@dataclass(frozen=True)
class RunRows:
    """A finished run's out-of-fold rows of one task, each with its query."""

    run_id: int
    name: str
    task: str
    split: tuple[str | None, ...]  # what the rows were split from: dataset and fold assignment hashes
    ids: list[str]
    labels: list[int]
    probs: list[float]
    folds: list[int]
    languages: list[str]
    queries: list[str]


def split_of(session: Session, fold_stage: Stage, task: str | None = None) -> tuple[str | None, ...]:
    """The content hashes of the dataset and the fold assignment a fold stage was trained on: of
    ``task``'s where given (a model for both tasks trains on both tasks' datasets and folds, and shares
    each task's with that task's single-task runs and baselines)."""
    deps = [session.get(Stage, dep_id) for dep_id in fold_stage.depends_on]
    return tuple(
        sorted(
            str((dep.output or {}).get("hash"))
            for dep in deps
            if dep is not None and dep.kind in ("ingest", "split") and (task is None or dep.config.get("task") == task)
        )
    )


def dataset_queries(session: Session, settings: Settings, fold_stage: Stage, task: str) -> dict[str, str]:
    """Row id -> query of the dataset of ``task`` that a fold stage was trained on (LookupError if the
    run database no longer has it)."""
    from relctl_core.data import read_examples

    ingest = [
        dep
        for dep_id in fold_stage.depends_on
        if (dep := session.get(Stage, dep_id)) is not None and dep.kind == "ingest" and dep.config.get("task") == task
    ]
    if not ingest or not ingest[0].output:
        raise LookupError(f"the dataset its {task} folds were split from is not in the run database")
    return {example.id: example.query for example in read_examples(settings.artifact_root / ingest[0].output["artifacts"]["train"])}


def scored_tasks(session: Session, run_id: int) -> dict[str, Stage]:
    """A finished run's evaluate stages by the task they scored (a model for both tasks has two)."""
    run = session.get(Run, run_id)
    if run is None:
        raise InputError(f"no run {run_id} (see `relctl show EXPERIMENT`)")
    if run.status != DONE:
        raise InputError(f"run {run_id} ({run.name}) is {run.status}, not done")
    stages = session.scalars(select(Stage).where(Stage.run_id == run_id, Stage.kind == "evaluate", Stage.status == DONE).order_by(Stage.id)).all()
    return {EvaluatePayload.model_validate(stage.config).task: stage for stage in stages}


def read_run_rows(session: Session, settings: Settings, run_id: int, task: str) -> RunRows:
    """The out-of-fold rows run ``run_id`` was scored on for ``task``, with each row's query."""

    from relctl_evaluator.tasks import out_of_fold

    run = session.get(Run, run_id)
    assert run is not None
    stage = scored_tasks(session, run_id).get(task)
    if stage is None:
        raise InputError(f"run {run_id} ({run.name}) was not scored on {task}")
    payload = EvaluatePayload.model_validate(stage.config)
    deps = [session.get(Stage, dep_id) for dep_id in stage.depends_on]
    fold_stages = [dep for dep in deps if dep is not None and dep.kind in ("train", "baseline")]
    if not fold_stages:
        raise InputError(f"run {run_id} ({run.name}) has no out-of-fold rows to compare")
    oof = out_of_fold(payload, [dep.output or {} for dep in fold_stages], lambda relative: settings.artifact_root / relative)
    try:
        query_of = dataset_queries(session, settings, fold_stages[0], task)
    except LookupError as exc:
        raise InputError(f"run {run_id} ({run.name}): {exc}") from None
    return RunRows(
        run_id=run_id, name=run.name, task=task, split=split_of(session, fold_stages[0], task), ids=oof.ids, labels=oof.labels,
        probs=oof.probs, folds=oof.folds, languages=oof.languages, queries=[query_of[i] for i in oof.ids],
    )  # fmt: skip


def common_task(session: Session, run_a: int, run_b: int, task: str | None) -> str:
    """The task both runs were scored on: --task, or the only one they share."""
    tasks_a, tasks_b = set(scored_tasks(session, run_a)), set(scored_tasks(session, run_b))
    shared = tasks_a & tasks_b
    if task is not None:
        code = task.upper()
        if code not in ("QC", "QI"):
            raise InputError(f"unknown task {task!r}; valid: qc, qi", path="--task")
        for run_id, tasks in ((run_a, tasks_a), (run_b, tasks_b)):
            if code not in tasks:
                raise InputError(f"run {run_id} was not scored on {code} (it was on {', '.join(sorted(tasks)) or 'nothing'})", path="--task")
        return code
    if not shared:
        raise InputError(
            f"runs {run_a} and {run_b} were scored on no common task: {run_a} on {', '.join(sorted(tasks_a)) or 'nothing'}, "
            f"{run_b} on {', '.join(sorted(tasks_b)) or 'nothing'}"
        )
    if len(shared) > 1:
        raise InputError(f"runs {run_a} and {run_b} were both scored on {' and '.join(sorted(shared))}: say which with --task", path="--task")
    return shared.pop()


def paired_rows(a: RunRows, b: RunRows) -> tuple[ScoredRows, np.ndarray, np.ndarray]:
    """The rows both runs scored, aligned, or bad input when they do not share their folds."""
    why = f"runs {a.run_id} and {b.run_id} do not share their folds"
    if a.split != b.split:
        raise InputError(f"{why}: they were split differently (other data or split settings), so their folds hold other rows")
    if sorted(set(a.folds)) != sorted(set(b.folds)):
        raise InputError(f"{why}: run {a.run_id} was scored on folds {sorted(set(a.folds))}, run {b.run_id} on {sorted(set(b.folds))}")
    b_prob = {(fold, row_id): prob for fold, row_id, prob in zip(b.folds, b.ids, b.probs, strict=True)}
    if len(b_prob) != len(a.ids) or any((fold, row_id) not in b_prob for fold, row_id in zip(a.folds, a.ids, strict=True)):
        raise InputError(f"{why}: they scored other rows")
    scored = ScoredRows.of(a.labels, a.folds, a.queries, a.languages)
    prob_b = np.array([b_prob[(fold, row_id)] for fold, row_id in zip(a.folds, a.ids, strict=True)])
    return scored, np.array(a.probs), prob_b


def compare_runs(
    settings: Settings, run_a: int, run_b: int, *, metric: str, task: str | None, by_language: bool, resamples: int, permutations: int, seed: int
) -> tuple[RunRows, RunRows, dict[str | None, Comparison]]:
    if metric not in RESAMPLED:
        raise InputError(f"cannot compare on {metric!r}; valid: {', '.join(RESAMPLED)}", path="--metric")
    if run_a == run_b:
        raise InputError("compare two different runs")
    with session_scope(settings.database_url) as session:
        code = common_task(session, run_a, run_b, task)
        a, b = read_run_rows(session, settings, run_a, code), read_run_rows(session, settings, run_b, code)
    scored, prob_a, prob_b = paired_rows(a, b)
    found = comparisons(metric, scored, prob_a, prob_b, by_language=by_language, resamples=resamples, permutations=permutations, seed=seed)
    return a, b, found


def _figure(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.4f}"


def _signed(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:+.4f}"


def comparison_line(result: Comparison) -> str:
    return (
        f"{_figure(result.a)} vs {_figure(result.b)}  difference {_signed(result.difference)} "
        f"[{_signed(result.low)}, {_signed(result.high)}]  p={_figure(result.p_value)}  {result.verdict}"
    )


@click.command()
@click.argument("run_a", type=int)
@click.argument("run_b", type=int)
@click.option("--metric", default="f1@oof", show_default=True, help=f"One of: {', '.join(RESAMPLED)}.")
@click.option("--task", default=None, metavar="qc|qi", help="The task, where both runs were scored on both (a model for both tasks).")
@click.option("--by", "by", type=click.Choice(["language"]), default=None, help="Also compare each language.")
@click.option("--resamples", default=DEFAULT_RESAMPLES, show_default=True, type=click.IntRange(min=100), help="Bootstrap resamples.")
@click.option("--permutations", default=DEFAULT_PERMUTATIONS, show_default=True, type=click.IntRange(min=0), help="Permutations for the p-value (0: none).")
@click.option("--seed", default=0, show_default=True, help="Seed of the resampling.")
@click.option("--json", "as_json", is_flag=True)
def compare(run_a: int, run_b: int, metric: str, task: str | None, by: str | None, resamples: int, permutations: int, seed: int, as_json: bool) -> None:
    """Compare two runs on the same folds: the difference of a metric, A minus B, with its 95 % interval.

    Both runs are scored on their out-of-fold rows, as the leaderboard scores them (the CV mean over
    folds; F1@oof at thresholds cross-fitted within each fold). The interval is a paired bootstrap
    that resamples whole queries within each fold (rows of one query are correlated), re-tuning the
    F1@oof thresholds in every resample; the p-value is a paired permutation test that swaps the two
    runs' predictions of random queries. Runs split differently cannot be compared (exit 2).

    \b
    Examples:
      relctl compare 12 14
      relctl compare 12 14 --metric roc_auc --by language --json
    """
    from relctl_core.migrate import check_database

    settings = load_settings()
    check_database(settings.database_url)
    a, b, found = compare_runs(
        settings, run_a, run_b, metric=metric, task=task, by_language=by == "language", resamples=resamples, permutations=permutations, seed=seed
    )
    if as_json:
        overall = found[None].as_dict()
        document: dict[str, Any] = {
            "a": {"run_id": a.run_id, "run": a.name, "score": overall.pop("a")},
            "b": {"run_id": b.run_id, "run": b.name, "score": overall.pop("b")},
            "task": a.task,
            "confidence": 0.95,
            **overall,
        }
        if by == "language":
            document["languages"] = {language: result.as_dict() for language, result in found.items() if language is not None}
        click.echo(json.dumps(document, indent=2))
        return
    overall = found[None]
    click.echo(f"A: run {a.run_id} {a.name}")
    click.echo(f"B: run {b.run_id} {b.name}")
    click.echo(
        f"{a.task} {metric}, A minus B, 95 % interval resampled by query ({overall.queries:,} queries, {overall.rows:,} rows, {resamples:,} resamples):"
    )
    click.echo(f"  {'all':<8} {comparison_line(overall)}")
    for language, result in found.items():
        if language is not None:
            click.echo(f"  {language:<8} {comparison_line(result)}  ({result.queries:,} queries)")
