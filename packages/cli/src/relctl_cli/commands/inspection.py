"""Commands that look at an experiment: status, logs, show."""

from __future__ import annotations

import json
import time
from typing import Any

import click
from relctl_core.db import Event, Metric, Run, Stage, session_scope
from relctl_core.leaderboard import THRESHOLD
from relctl_core.settings import Settings
from sqlalchemy import select

from relctl_cli.commands.running import progress_text
from relctl_cli.common import TERMINAL, experiment_or_fail, experiment_with_stages, settings_with_schema
from relctl_cli.render import console, emit_json, err_console, fmt, state, table, with_interval


@click.command()
@click.argument("experiment_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def status(experiment_id: int, as_json: bool) -> None:
    """Show an experiment's stages: state, attempts, worker, progress.

    \b
    Example:
      relctl status 12
    """
    settings = settings_with_schema()
    with session_scope(settings.database_url) as session:
        experiment, stages = experiment_with_stages(session, experiment_id)
        rows = [
            {
                "id": s.id,
                "stage": s.label,
                "status": s.status,
                "cached": s.cached_from is not None,
                "attempts": s.attempts,
                "worker": s.worker_host,
                "queue": s.queue,
                "progress": progress_text(s) if s.status == "running" else "",
                "last_progress": s.progress,  # the stage's last report (done/total and rate), kept after it ends
                "seconds": f"{(s.finished_at - s.started_at).total_seconds():.1f}" if s.finished_at and s.started_at else None,
                "error": s.error,
                "losses": s.losses or [],  # attempts whose worker died: host, when, at which step, why
                "waits_for": s.waits_for,
                "note": stage_note(s),
            }
            for s in stages
        ]
        head = {"experiment_id": experiment.id, "name": experiment.name, "status": experiment.status, "error": experiment.error}
    if as_json:
        emit_json({**head, "stages": rows})
        return
    console.print(f"experiment [bold]{head['experiment_id']}[/] {head['name']}: {state(head['status'])}")
    console.print(
        table(
            None,
            ["id", "stage", "status", "queue", "attempts", "worker", "progress", "seconds", "note"],
            [[r["id"], r["stage"], r["status"] + (" (cached)" if r["cached"] else ""), r["queue"], r["attempts"], r["worker"], r["progress"], r["seconds"], r["note"]] for r in rows],
            states="status",
        )
    )
    for r in rows:
        if r["error"]:
            err_console.print(f"[red]{r['stage']}[/]: {r['error']}", highlight=False)


def stage_note(stage: Any) -> str:
    """What a stage's status alone does not say: it was taken over from a dead worker, or it waits for
    its twin in another experiment."""
    if stage.waits_for is not None and stage.status == "queued":
        return f"waits for stage {stage.waits_for}"
    losses = stage.losses or []
    if not losses or stage.status == "failed":
        return ""
    last = losses[-1]
    at = f" at step {last['step']}" if last.get("step") else ""
    verb = "taken over" if stage.status in ("queued", "running") else "recovered"
    return f"{verb}: worker on {last['host']} lost{at} ({len(losses)} lost)"


@click.command()
@click.argument("experiment_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the experiment ends.")
@click.option("--json", "as_json", is_flag=True)
def logs(experiment_id: int, follow: bool, as_json: bool) -> None:
    """Print an experiment's log: stage starts and ends, training progress, errors.

    \b
    Example:
      relctl logs 12 --follow
    """
    settings = settings_with_schema()
    last = 0
    while True:
        with session_scope(settings.database_url) as session:
            experiment = experiment_or_fail(session, experiment_id)
            events = session.scalars(select(Event).where(Event.experiment_id == experiment_id, Event.id > last).order_by(Event.id)).all()
            ended = experiment.status in TERMINAL
        for e in events:
            last = e.id
            if as_json:
                print(json.dumps({"ts": e.ts.isoformat(), "stage_id": e.stage_id, "level": e.level, "message": e.message}, ensure_ascii=False))
            else:
                colour = {"error": "red", "debug": "dim"}.get(e.level, "white")
                console.print(f"[dim]{fmt(e.ts)}[/] [{colour}]{e.message}[/]", highlight=False, markup=True)
        if not follow or (ended and not events):
            return
        time.sleep(1.0)


@click.command()
@click.argument("experiment_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def show(experiment_id: int, as_json: bool) -> None:
    """Show an experiment: its spec, datasets, split audit, translations, runs (with the decision threshold
    `relctl predict` applies, per task), example model inputs, and with split.holdout_fold each run's
    scores on the holdout rows.

    \b
    Example:
      relctl show 12
    """
    settings = settings_with_schema()
    with session_scope(settings.database_url) as session:
        experiment, stages = experiment_with_stages(session, experiment_id)
        runs = session.scalars(select(Run).where(Run.experiment_id == experiment_id).order_by(Run.id)).all()
        thresholds: dict[int, dict[str, float | None]] = {}
        pooled = select(Metric.run_id, Metric.task, Metric.value).where(
            Metric.experiment_id == experiment_id, Metric.name == THRESHOLD, Metric.fold.is_(None), Metric.language.is_(None)
        )
        for run_id, task, value in session.execute(pooled.order_by(Metric.id)):
            thresholds.setdefault(run_id, {})[task] = value
        detail: dict[str, Any] = {
            "experiment_id": experiment.id,
            "name": experiment.name,
            "status": experiment.status,
            "spec_path": experiment.spec_path,
            "created": experiment.created_at,
            "finished": experiment.finished_at,
            "error": experiment.error,
            "runs": [
                {"id": r.id, "name": r.name, "kind": r.kind, "task": r.task, "status": r.status, "threshold": thresholds.get(r.id, {})}
                for r in runs
            ],
            "datasets": [{"stage": s.label, **(s.output or {}).get("summary", {})} for s in stages if s.kind == "ingest" and s.output],
            "splits": [{"stage": s.label, **{k: v for k, v in (s.output or {}).get("audit", {}).items() if k != "folds"}} for s in stages if s.kind == "split" and s.output],
            "translations": [
                {
                    "stage": s.label,
                    **(s.output or {}).get("summary", {}),
                    "chrf": {lang: q["chrf"] for lang, q in (s.output or {}).get("quality", {}).items()},
                }
                for s in stages
                if s.kind == "translate" and s.output
            ],
            "example_inputs": example_inputs(settings, stages),
            "holdout": holdout_scores(session, stages, runs),
        }
    if as_json:
        emit_json(detail)
        return
    console.print(f"experiment [bold]{detail['experiment_id']}[/] {detail['name']}: {state(detail['status'])}  ({detail['spec_path']})")
    for d in detail["datasets"]:
        console.print(f"  {d['stage']}: {d.get('rows')} rows, positive rate {fmt(d.get('positive_rate'))}, languages {', '.join(sorted(d.get('languages', {})))}")
    for s in detail["splits"]:
        console.print(f"  {s['stage']}: query leakage {fmt(s.get('query_leakage'))}, group leakage {fmt(s.get('group_leakage'))}, size ratio {fmt(s.get('size_ratio'))}")
    for t in detail["translations"]:
        console.print(
            f"  {t['stage']}: {t.get('unique_queries')} unique queries: {t.get('translated')} translated, "
            f"{t.get('cached')} from the cache, {t.get('english_passthrough')} already English, {t.get('failed')} failed"
        )
        if t["chrf"]:
            console.print("    chrF on the reference set: " + ", ".join(f"{lang} {v:.1f}" for lang, v in t["chrf"].items()))
    runs_shown = [[r["id"], r["name"], r["kind"], r["task"], r["status"], _thresholds_text(r["threshold"])] for r in detail["runs"]]
    console.print(table("runs", ["id", "name", "kind", "task", "status", "threshold"], runs_shown, states="status"))
    if detail["example_inputs"]:
        console.print(table("example model inputs (query side | target side)", ["query", "target"], [[e["query_text"], e["target_text"]] for e in detail["example_inputs"]]))
    print_holdout(detail["holdout"])


# The holdout scores `relctl show` lists, in its order (relctl_evaluator.holdout names them).
HOLDOUT_METRICS = ("f1@oof", "f1@0.5", "roc_auc", "pr_auc")
HOLDOUT_ARMS = ("single", "ensemble", "ensemble-single")


def holdout_scores(session: Any, stages: list[Stage], runs: Any) -> list[dict[str, Any]]:
    """Each scored run's holdout scores (split.holdout_fold), over all languages: per metric, one fold
    model (the mean over fold models, and each fold's), the ensemble and their difference, each with
    its 95 % interval; the thresholds F1@oof was scored at."""
    evaluated = [s for s in stages if s.kind == "evaluate" and s.status == "done" and s.config.get("holdout_fold") is not None]
    if not evaluated:
        return []
    rows = session.scalars(
        select(Metric).where(Metric.stage_id.in_([s.id for s in evaluated]), Metric.name.like("holdout.%"), Metric.language.is_(None))
    ).all()
    by_stage: dict[int, list[Any]] = {}
    for row in rows:
        by_stage.setdefault(row.stage_id, []).append(row)
    run_of = {r.id: r for r in runs}
    found = []
    for stage in evaluated:
        run = run_of.get(stage.run_id)
        entry: dict[str, Any] = {
            "run_id": stage.run_id,
            "run": run.name if run else None,
            "kind": run.kind if run else None,
            "task": stage.config.get("task"),
            "holdout_fold": stage.config["holdout_fold"],
            "method": stage.config.get("combine"),
            "rows": None,
            "positive_rate": None,
            "thresholds": {"ensemble": None, "folds": {}},
            "scores": {metric: {**{arm: None for arm in HOLDOUT_ARMS}, "folds": {}} for metric in HOLDOUT_METRICS},
        }
        for row in by_stage.get(stage.id, []):
            arm, _, metric = row.name.removeprefix("holdout.").partition(".")
            if not metric:
                entry[arm] = row.value  # rows, positive_rate
            elif metric == "threshold":
                if arm == "fold":
                    entry["thresholds"]["folds"][row.fold] = row.value
                else:
                    entry["thresholds"]["ensemble"] = row.value
            elif metric in entry["scores"]:
                value = {"value": row.value, "low": row.low, "high": row.high}
                if arm == "fold":
                    entry["scores"][metric]["folds"][row.fold] = value
                elif arm in HOLDOUT_ARMS:
                    entry["scores"][metric][arm] = {**value, **({"std": row.std} if arm == "single" else {})}
        for metric in HOLDOUT_METRICS:
            entry["scores"][metric]["folds"] = dict(sorted(entry["scores"][metric]["folds"].items()))
        entry["thresholds"]["folds"] = dict(sorted(entry["thresholds"]["folds"].items()))
        found.append(entry)
    return found


def print_holdout(entries: list[dict[str, Any]]) -> None:
    if not entries:
        return

    def cell(score: dict[str, Any] | None) -> str:
        return with_interval(score["value"], score["low"], score["high"]) if score else "-"

    folds = sorted({entry["holdout_fold"] for entry in entries})
    sizes = ", ".join(f"{task} {rows:.0f}" for task, rows in {e["task"]: e["rows"] or 0 for e in entries}.items())
    rows = [
        [entry["run"], entry["task"], metric, cell(entry["scores"][metric]["single"]), f"{cell(entry['scores'][metric]['ensemble'])} ({entry['method']})",
         cell(entry["scores"][metric]["ensemble-single"])]
        for entry in entries
        for metric in HOLDOUT_METRICS
    ]  # fmt: skip
    title = (
        f"holdout fold {', '.join(map(str, folds))} ({sizes} rows), which no fold model trained or validated on; "
        "F1@oof at thresholds chosen on out-of-fold rows; 95 % intervals resampled by query"
    )
    console.print(table(title, ["run", "task", "metric", "one fold model", "ensemble", "ensemble - one"], rows))


def _thresholds_text(thresholds: dict[str, float | None]) -> str:
    """The pooled out-of-fold threshold of each scored task: "0.5312", or "QC 0.5312, QI 0.4800" for a model of both."""
    if not thresholds:
        return "-"
    if len(thresholds) == 1:
        return fmt(next(iter(thresholds.values())))
    return ", ".join(f"{task} {fmt(value)}" for task, value in sorted(thresholds.items()))


def example_inputs(settings: Settings, stages: list[Stage], count: int = 5) -> list[dict[str, str]]:
    for stage in stages:
        if stage.kind == "train" and stage.cache_key:
            rows_file = settings.artifact_root / "train" / stage.cache_key / "inputs" / "train.jsonl"
            if rows_file.is_file():
                with rows_file.open(encoding="utf-8") as rows:
                    picked = [json.loads(line) for _, line in zip(range(count), rows, strict=False)]
                return [{"query_text": r["query_text"], "target_text": r["target_text"]} for r in picked]
    return []
