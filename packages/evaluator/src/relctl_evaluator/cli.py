"""`relctl ensemble`: combine finished runs into one, scored by the evaluator on their out-of-fold rows."""

from __future__ import annotations

import json

import click
from relctl_core import names
from relctl_core.db import DONE, PENDING, Experiment, Metric, Run, Stage, session_scope
from relctl_core.errors import InputError, RelctlError
from relctl_core.payloads import EvaluatePayload
from relctl_core.pipeline import execute_stage
from relctl_core.settings import Settings, load_settings
from sqlalchemy import select
from sqlalchemy.orm import Session

from relctl_evaluator.compare import split_of

HEADLINE = ("f1@oof", "f1@0.5", "roc_auc")


@click.command()
@click.argument("run_ids", nargs=-1, required=True, type=int)
@click.option("--method", type=click.Choice(["mean", "vote"]), default="mean", show_default=True, help="mean probability, or the share of models voting relevant at 0.5.")
@click.option("--name", default=None, help="Name of the ensemble run (default: ensemble:RUN+RUN...).")
@click.option("--json", "as_json", is_flag=True, help="Print the ensemble and its members as JSON.")
def ensemble(run_ids: tuple[int, ...], method: str, name: str | None, as_json: bool) -> None:
    """Combine finished runs of one task into an ensemble run and score it.

    Each fold's out-of-fold rows are scored by the members' models of that fold, combined, then
    scored like any run (F1 at 0.5 and at the cross-fitted out-of-fold threshold, ROC-AUC, per
    language and fold); test predictions are combined too. The members must share their folds (the
    same split). The ensemble lands in a new experiment and on the leaderboard.

    \b
    Example:
      relctl ensemble 3 4 7 --method mean
      relctl leaderboard --task qc
    """
    from relctl_core.experiments import check_services

    from relctl_evaluator import __version__
    from relctl_evaluator.tasks import evaluate_run

    if len(set(run_ids)) < 2:
        raise InputError("an ensemble needs at least two different runs")
    settings = load_settings()
    check_services(settings, broker=False)
    experiment_id, stage_id = _write_ensemble(settings, list(dict.fromkeys(run_ids)), method, name)
    status = execute_stage(stage_id, evaluate_run, version=__version__, settings=settings)
    with session_scope(settings.database_url) as session:
        stage = session.get(Stage, stage_id)
        assert stage is not None
        if status != DONE:
            raise RelctlError(f"scoring the ensemble failed: {stage.error}")
        rows = _headline(session, [stage.run_id, *run_ids])
    if as_json:
        click.echo(json.dumps({"experiment_id": experiment_id, "rows": rows}, indent=2))
        return
    for row in rows:
        figures = ", ".join(f"{metric} {row[metric]:.4f}" for metric in HEADLINE if row.get(metric) is not None)
        click.echo(f"run {row['run_id']:>4}  {row['run']:<40} {figures}")
    click.echo(f"experiment {experiment_id}: relctl leaderboard --experiment {experiment_id} --by language")


def _write_ensemble(settings: Settings, run_ids: list[int], method: str, name: str | None) -> tuple[int, int]:
    """Check the members and write the ensemble's experiment, run and evaluate stage (pending)."""
    with session_scope(settings.database_url) as session:
        members, depends_on, tasks, fold_sets, splits, holdouts = [], [], set(), {}, {}, {}
        for run_id in run_ids:
            run = session.get(Run, run_id)
            if run is None:
                raise InputError(f"no run {run_id} (see `relctl show EXPERIMENT`)")
            if run.status != DONE:
                raise InputError(f"run {run_id} ({run.name}) is {run.status}, not done")
            if run.config.get("tasks"):
                raise InputError(f"run {run_id} ({run.name}) is one model for both tasks; ensembles combine runs of one task")
            fold_stages = session.scalars(
                select(Stage).where(Stage.run_id == run_id, Stage.kind.in_(("train", "baseline"))).order_by(Stage.id)
            ).all()
            if not fold_stages:
                raise InputError(f"run {run_id} ({run.name}) has no fold models to combine (an ensemble itself?)")
            fold_stages = sorted(fold_stages, key=lambda s: int(s.config["fold"]))
            splits[run_id] = split_of(session, fold_stages[0])
            holdouts[run_id] = fold_stages[0].config.get("holdout_fold")
            tasks.add(run.task)
            fold_sets[run_id] = [int(s.config["fold"]) for s in fold_stages]
            members.append({"run": run_id, "name": run.name, "folds": fold_sets[run_id]})
            depends_on.extend(s.id for s in fold_stages)
        if len(tasks) > 1:
            raise InputError(f"runs of different tasks cannot be combined: {', '.join(sorted(tasks))}")
        first = run_ids[0]
        for run_id, folds in fold_sets.items():
            if folds != fold_sets[first]:
                raise InputError(f"run {run_id} has folds {folds} but run {first} has {fold_sets[first]}: members must share their folds")
            if splits[run_id] != splits[first]:
                raise InputError(f"runs {first} and {run_id} were split differently (other data or split settings): their folds hold other rows")
            if holdouts[run_id] != holdouts[first]:
                raise InputError(
                    f"run {run_id} has holdout fold {holdouts[run_id]} but run {first} has {holdouts[first]}: members must hold out the same fold"
                )
        task = tasks.pop()
        run_name = name or "ensemble:" + "+".join(str(r) for r in run_ids)
        config = EvaluatePayload(task=task, folds=fold_sets[first], combine=method, members=members, holdout_fold=holdouts[first]).config()
        experiment = Experiment(name=run_name[:100], status=PENDING, spec_path="", spec_text="", spec={"ensemble": config})
        session.add(experiment)
        session.flush()
        run = Run(experiment_id=experiment.id, name=run_name, kind="ensemble", task=task, config=config)
        session.add(run)
        session.flush()
        stage = Stage(
            experiment_id=experiment.id,
            run_id=run.id,
            kind="evaluate",
            key=f"evaluate:ensemble-{experiment.id}",
            label=f"evaluate {run_name}",
            task_name=names.EVALUATE,
            queue=names.CPU_QUEUE,
            config=config,
            depends_on=depends_on,
            status=PENDING,
        )
        session.add(stage)
        session.flush()
        return experiment.id, stage.id


def _headline(session: Session, run_ids: list[int | None]) -> list[dict[str, object]]:
    rows = []
    for run_id in run_ids:
        run = session.get(Run, run_id)
        assert run is not None
        values = dict(
            session.execute(
                select(Metric.name, Metric.value).where(
                    Metric.run_id == run_id, Metric.fold.is_(None), Metric.language.is_(None), Metric.name.in_(HEADLINE)
                )
            ).all()
        )
        rows.append({"run_id": run_id, "run": run.name, "kind": run.kind, **values})
    return rows
