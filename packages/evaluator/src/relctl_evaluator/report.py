"""What `relctl report` shows, gathered from the run database and the artifacts as plain data: per
experiment its judged leaderboards, curves on the out-of-fold rows, thresholds, per-language scores
beside translation quality, training curves, the split audit, the stage timeline, example model
inputs and the resolved spec. report_html.py draws and renders it."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
from relctl_core.db import DONE, Event, Experiment, Metric, Run, Stage, session_scope
from relctl_core.errors import InputError
from relctl_core.settings import Settings, load_settings
from sqlalchemy import select
from sqlalchemy.orm import Session

from relctl_evaluator.judged import Contender, StderrProgress, contenders_of, finite, judge
from relctl_evaluator.metrics import POOLED_THRESHOLD, cross_fitted
from relctl_evaluator.stats import DEFAULT_RESAMPLES, RESAMPLED, ScoredRows, intervals

Progress = Callable[[str], None]
LANGUAGE_METRICS = ("f1@oof", "roc_auc")
CHRF = "translation.chrf"
EXAMPLE_ROWS = 5
# Points of a curve drawn: a precision-recall curve has one per distinct prob, and a page of a
# hundred thousand rows per run would not open.
CURVE_POINTS = 2000
# The trainer's log lines (relctl_trainer.tasks): the only per-epoch record a training leaves.
STEP_LINE = re.compile(r"^epoch (\d+) step (\d+)/(\d+) loss (\S+)$")
EPOCH_LINE = re.compile(r"^epoch (\d+) done: (.*)$")
VALIDATION_VALUE = re.compile(r"val (\w+) (\S+)")


def build_report(
    settings: Settings,
    experiment_ids: Sequence[int],
    *,
    metric: str = "f1@oof",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report of ``experiment_ids``: a section per experiment and, for several, the combined board.

    Unknown experiments, and experiments none of which has a scored run, are bad input."""
    ids = list(dict.fromkeys(experiment_ids))
    with session_scope(settings.database_url) as session:
        missing = [i for i in ids if session.get(Experiment, i) is None]
        if missing:
            raise InputError(f"no experiment {', '.join(map(str, missing))} (see `relctl list`)")
        sections = [experiment_section(session, settings, i, metric=metric, resamples=resamples, seed=seed, progress=progress) for i in ids]
    if not any(section["scored"] for section in sections):
        states = ", ".join(f"{s['id']} is {s['status']}" for s in sections)
        raise InputError(f"nothing to report: no run of experiment {', '.join(map(str, ids))} has been scored yet ({states})")
    combined = [
        {**row, "experiment_id": section["id"], "experiment": section["name"]}
        for section in sections
        for row in section["boards"].get(metric, [])
    ]
    combined.sort(key=lambda r: (r["task"], r["value"] is None, -(r["value"] or 0.0), r["experiment_id"], r["run_id"]))
    return {
        "generated_at": _when(dt.datetime.now(dt.UTC)),
        "metric": metric,
        "resamples": resamples,
        "seed": seed,
        "experiments": sections,
        "combined": combined if len(sections) > 1 else [],
    }


def experiment_section(
    session: Session, settings: Settings, experiment_id: int, *, metric: str, resamples: int, seed: int, progress: Progress | None
) -> dict[str, Any]:
    experiment = session.get(Experiment, experiment_id)
    assert experiment is not None
    stages = list(session.scalars(select(Stage).where(Stage.experiment_id == experiment_id).order_by(Stage.id)))
    runs = list(session.scalars(select(Run).where(Run.experiment_id == experiment_id).order_by(Run.id)))

    def say(message: str) -> None:
        if progress is not None:
            progress(f"experiment {experiment_id}: {message}")

    say("reading the out-of-fold rows of its finished runs")
    unreadable: list[str] = []
    contenders = contenders_of(session, settings, experiment_id, on_unreadable=unreadable.append)
    section: dict[str, Any] = {
        "id": experiment.id,
        "name": experiment.name,
        "status": experiment.status,
        "error": experiment.error,
        "spec_path": experiment.spec_path,
        "created": _when(experiment.created_at),
        "finished": _when(experiment.finished_at),
        "runs": [{"id": r.id, "name": r.name, "kind": r.kind, "task": r.task, "status": r.status} for r in runs],
        "scored": bool(contenders),
        "missing": missing_parts(experiment, runs, stages) + unreadable,
        "spec_json": json.dumps(experiment.spec, indent=2, ensure_ascii=False, sort_keys=True, default=str),
        "spec_text": experiment.spec_text,
        "boards": {},
        "tasks": [],
    }
    board_metrics = list(dict.fromkeys([metric, "roc_auc"]))
    for name in board_metrics:
        section["boards"][name] = judge(contenders, name, resamples=resamples, seed=seed, progress=say) if contenders else []
    chrf = translation_quality(session, experiment_id)
    for task in sorted({c.rows.task for c in contenders}):
        of_task = [c for c in contenders if c.rows.task == task]
        say(f"{task}: curves, thresholds and per-language intervals")
        languages = language_scores(of_task, resamples=resamples, seed=seed, progress=say)
        section["tasks"].append(
            {
                "task": task,
                "curves": [curves_of(c) for c in of_task],
                "thresholds": [threshold_view(session, c) for c in of_task if c.kind != "baseline"],
                "languages": languages,
                "chrf": {language: value for (t, language), value in chrf.items() if t == task},
                "translated": any(s.kind == "translate" and (s.config or {}).get("task") == task for s in stages),
                "gains": translation_gains(session, of_task, languages, {language: v for (t, language), v in chrf.items() if t == task}),
            }
        )
    section["training"] = training_curves(session, runs, stages)
    section["splits"] = split_audits(stages)
    for split in section["splits"]:
        # The folds the runs were validated on (a spec may train some folds only).
        split["scored_folds"] = sorted({fold for c in contenders if c.rows.task == split["task"] for fold in c.rows.folds})
    section["timeline"] = timeline(stages)
    section["examples"] = example_inputs(settings, runs, stages)
    return section


def missing_parts(experiment: Experiment, runs: Sequence[Run], stages: Sequence[Stage]) -> list[str]:
    """What the report cannot show yet, in words."""
    notes = []
    if experiment.status != DONE:
        notes.append(f"experiment {experiment.id} is {experiment.status}, not done: this report shows what has finished so far")
    for run in runs:
        if run.status != DONE:
            notes.append(f"run {run.id} ({run.name}) is {run.status}: it is not on the leaderboard and has no curves")
    unfinished = [s for s in stages if s.status != DONE]
    if unfinished:
        counts: dict[str, int] = {}
        for stage in unfinished:
            counts[stage.status] = counts.get(stage.status, 0) + 1
        notes.append("stages not done: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return notes


# --- curves and thresholds ------------------------------------------------------------------------------


def _thinned(*columns: np.ndarray) -> list[list[float]]:
    """Columns of a curve, evenly thinned to CURVE_POINTS points (the first and last kept)."""
    size = len(columns[0])
    keep = np.unique(np.linspace(0, size - 1, CURVE_POINTS).round().astype(int)) if size > CURVE_POINTS else np.arange(size)
    return [[float(v) for v in np.asarray(column, dtype=np.float64)[keep]] for column in columns]


def curves_of(contender: Contender) -> dict[str, Any]:
    """ROC and precision-recall curves of a run's out-of-fold rows, pooled over its folds."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    labels = np.asarray(contender.rows.labels, dtype=int)
    probs = np.asarray(contender.rows.probs, dtype=np.float64)
    found: dict[str, Any] = {"run_id": contender.rows.run_id, "run": contender.rows.name, "kind": contender.kind, "roc": None, "pr": None}
    if labels.min() == labels.max():
        return found  # one class: neither curve is defined
    fpr, tpr, roc_thresholds = roc_curve(labels, probs)
    fpr_, tpr_, thr_ = _thinned(fpr, tpr, np.minimum(roc_thresholds, 1.0))
    found["roc"] = {"fpr": fpr_, "tpr": tpr_, "threshold": thr_}
    precision, recall, pr_thresholds = precision_recall_curve(labels, probs)
    # The last point (recall 0, precision 1) has no threshold.
    precision_, recall_, thr = _thinned(precision[:-1], recall[:-1], pr_thresholds)
    found["pr"] = {"precision": precision_, "recall": recall_, "threshold": thr}
    return found


def _run_metric(session: Session, run_id: int, task: str, name: str) -> list[tuple[int | None, float | None]]:
    query = select(Metric.fold, Metric.value).where(Metric.run_id == run_id, Metric.task == task, Metric.name == name, Metric.language.is_(None))
    return [(fold, value) for fold, value in session.execute(query.order_by(Metric.fold))]


def threshold_view(session: Session, contender: Contender) -> dict[str, Any]:
    """F1 against the threshold on a run's out-of-fold rows (pooled), the thresholds the evaluator
    tuned (pooled and per fold), and the confusion matrix as F1@oof scores the rows: each row at the
    threshold tuned on the other half of its fold (never at one tuned on itself, as the pooled
    threshold is on these rows)."""
    from sklearn.metrics import confusion_matrix, precision_recall_curve

    rows = contender.rows
    labels = np.asarray(rows.labels, dtype=int)
    probs = np.asarray(rows.probs, dtype=np.float64)
    pooled = [value for fold, value in _run_metric(session, rows.run_id, rows.task, POOLED_THRESHOLD) if fold is None]
    per_fold = {fold: value for fold, value in _run_metric(session, rows.run_id, rows.task, "threshold@oof") if fold is not None and value is not None}
    if pooled and pooled[0] is not None:
        threshold, source = float(pooled[0]), POOLED_THRESHOLD
    elif per_fold:
        threshold, source = float(np.mean(list(per_fold.values()))), "mean of threshold@oof over folds"
    else:
        threshold, source = 0.5, "0.5 (the run database holds no tuned threshold)"
    thr: list[float] = []
    f1_: list[float] = []
    if labels.min() != labels.max():  # one class: F1 against the threshold says nothing
        precision, recall, thresholds = precision_recall_curve(labels, probs)
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        thr, f1_ = _thinned(thresholds, f1[:-1])
    folds = np.asarray(rows.folds)
    row_threshold = np.empty(probs.size)
    for fold in np.unique(folds):
        in_fold = np.flatnonzero(folds == fold)
        row_threshold[in_fold] = cross_fitted(labels[in_fold].astype(bool), probs[in_fold]) if in_fold.size >= 2 else threshold
    matrix = confusion_matrix(labels, (probs >= row_threshold).astype(int), labels=[0, 1])
    (tn, fp), (fn, tp) = matrix.tolist()
    return {
        "run_id": rows.run_id,
        "run": rows.name,
        "threshold": threshold,
        "threshold_source": source,
        "fold_thresholds": {str(fold): value for fold, value in sorted(per_fold.items())},
        "curve": {"threshold": thr, "f1": f1_},
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "rows": int(labels.size),
    }


# --- languages and translation --------------------------------------------------------------------------


def language_scores(contenders: Sequence[Contender], *, resamples: int, seed: int, progress: Progress) -> dict[str, Any]:
    """Per run, per language: F1@oof and ROC-AUC with their intervals (the same bootstrap as the board)."""
    runs = []
    for contender in contenders:
        rows = contender.rows
        scored = ScoredRows.of(rows.labels, rows.folds, rows.queries, rows.languages)
        per_metric = {}
        for name in LANGUAGE_METRICS:
            progress(f"{rows.task} {name} per language: run {rows.run_id} ({rows.name})")
            found = intervals(name, scored, np.array(rows.probs), by_language=True, resamples=resamples, seed=seed)
            per_metric[name] = {
                language: {"value": finite(i.value), "low": finite(i.low), "high": finite(i.high)} for language, i in found.items() if language is not None
            }
        runs.append({"run_id": rows.run_id, "run": rows.name, "kind": contender.kind, "mode": contender.mode, "metrics": per_metric})
    languages = sorted({language for run in runs for language in run["metrics"][LANGUAGE_METRICS[0]]})
    return {"languages": languages, "runs": runs}


def translation_quality(session: Session, experiment_id: int) -> dict[tuple[str, str], float | None]:
    """(task, language) -> chrF of the experiment's translator on the reference set (the latest measured)."""
    query = (
        select(Metric.task, Metric.language, Metric.value)
        .where(Metric.experiment_id == experiment_id, Metric.name == CHRF, Metric.run_id.is_(None), Metric.language.is_not(None))
        .order_by(Metric.id)
    )
    return {((task or "").upper(), language): value for task, language, value in session.execute(query)}


def _without_mode(run: Run) -> str:
    config = {k: v for k, v in run.config.items() if k not in ("mode", "overrides")}
    overrides = {k: v for k, v in (run.config.get("overrides") or {}).items() if k != "translation.mode"}
    return json.dumps([config, overrides], sort_keys=True, default=str)


def translation_gains(
    session: Session, contenders: Sequence[Contender], languages: dict[str, Any], chrf: dict[str, float | None]
) -> list[dict[str, Any]]:
    """Per language, chrF beside the F1@oof gain of each run that reads translations over its twin in
    mode ``orig`` (the same settings otherwise): the points of the chrF scatter."""
    by_run = {run["run_id"]: run for run in languages["runs"]}
    models = [c for c in contenders if c.kind == "model"]
    settings_of = {c.rows.run_id: _without_mode(session.get(Run, c.rows.run_id)) for c in models}  # type: ignore[arg-type]
    points = []
    for contender in models:
        if (contender.mode or "orig") == "orig":
            continue
        twins = [o for o in models if (o.mode or "orig") == "orig" and settings_of[o.rows.run_id] == settings_of[contender.rows.run_id]]
        if not twins:
            continue
        twin = twins[0]
        mine, theirs = by_run[contender.rows.run_id]["metrics"]["f1@oof"], by_run[twin.rows.run_id]["metrics"]["f1@oof"]
        for language, score in mine.items():
            quality = chrf.get(language)
            base = theirs.get(language, {}).get("value")
            if quality is None or score["value"] is None or base is None:
                continue
            points.append(
                {
                    "run_id": contender.rows.run_id,
                    "run": contender.rows.name,
                    "mode": contender.mode,
                    "orig_run_id": twin.rows.run_id,
                    "orig_run": twin.rows.name,
                    "language": language,
                    "chrf": quality,
                    "gain": score["value"] - base,
                }
            )
    return points


# --- training, split, timeline, inputs -----------------------------------------------------------------


def _number(text: str) -> float | None:
    try:
        value = float(text.rstrip(","))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def training_curves(session: Session, runs: Sequence[Run], stages: Sequence[Stage]) -> list[dict[str, Any]]:
    """Per model run, per fold: the training loss as the trainer logged it (the mean over the steps
    since its previous report) and the validation loss, ROC-AUC and F1@0.5 after each epoch.

    A training leaves its per-epoch record in the experiment's log (its events); a stage taken from
    the cache has the log of the stage that ran. The last epoch's validation scores are the stage
    output's, unrounded."""
    found = []
    for run in runs:
        trains = sorted((s for s in stages if s.run_id == run.id and s.kind == "train" and s.status == DONE), key=lambda s: int(s.config.get("fold", 0)))
        if run.kind != "model" or not trains:
            continue
        folds = []
        for stage in trains:
            source = stage.cached_from or stage.id
            messages = session.scalars(select(Event.message).where(Event.stage_id == source).order_by(Event.id)).all()
            epochs = int(((stage.config or {}).get("train") or {}).get("epochs") or 1)
            steps, validation = [], {}
            for message in messages:
                if match := STEP_LINE.match(message):
                    epoch, step, total = int(match[1]), int(match[2]), int(match[3])
                    loss = _number(match[4])
                    if loss is not None and total:
                        steps.append({"epoch": epoch, "step": step, "x": step * epochs / total, "loss": loss})
                elif match := EPOCH_LINE.match(message):
                    values = {name: _number(value) for name, value in VALIDATION_VALUE.findall(match[2])}
                    validation[int(match[1])] = {"epoch": int(match[1]), **values}
            last = stage.progress or {}
            if last.get("event") == "step" and last.get("total_steps") and isinstance(last.get("loss"), int | float):
                if not any(p["step"] == last["step"] for p in steps):
                    steps.append({"epoch": last["epoch"], "step": last["step"], "x": last["step"] * epochs / last["total_steps"], "loss": float(last["loss"])})
            output = stage.output or {}
            ran = output.get("epochs_run")
            if isinstance(output.get("val"), dict) and ran:
                validation[int(ran)] = {"epoch": int(ran), **{k: v for k, v in output["val"].items() if isinstance(v, int | float) or v is None}}
            folds.append(
                {
                    "fold": int(stage.config.get("fold", 0)),
                    "stage_id": stage.id,
                    "cached_from": stage.cached_from,
                    "steps": sorted(steps, key=lambda p: p["step"]),
                    "validation": [validation[e] for e in sorted(validation)],
                }
            )
        found.append({"run_id": run.id, "run": run.name, "folds": folds})
    return found


def split_audits(stages: Sequence[Stage]) -> list[dict[str, Any]]:
    """The audit of each split stage: fold sizes, label and language balance per fold, leakage."""
    found = []
    for stage in stages:
        if stage.kind != "split" or not stage.output:
            continue
        audit = stage.output.get("audit") or {}
        found.append(
            {
                "stage_id": stage.id,
                "label": stage.label,
                "task": (stage.config or {}).get("task"),
                "strategy": (stage.config or {}).get("strategy"),
                "category_depth": (stage.config or {}).get("category_depth"),
                "seed": (stage.config or {}).get("seed"),
                "folds": audit.get("folds", []),
                "languages": sorted({language for fold in audit.get("folds", []) for language in fold.get("languages", {})}),
                "query_leakage": audit.get("query_leakage"),
                "group_leakage": audit.get("group_leakage"),
                "size_ratio": audit.get("size_ratio"),
                "positive_rate_spread": audit.get("positive_rate_spread"),
            }
        )
    return found


def _when(moment: dt.datetime | None) -> str | None:
    """A time as ISO text in UTC without its zone (SQLite keeps times naive, in UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat(sep=" ", timespec="milliseconds")


def timeline(stages: Sequence[Stage]) -> dict[str, Any]:
    """Each stage's queue wait (queued..started) and run time (started..finished), with its worker."""
    bars, waiting = [], []
    for stage in stages:
        entry = {
            "stage_id": stage.id,
            "label": stage.label,
            "kind": stage.kind,
            "status": stage.status,
            "host": stage.worker_host or "(no worker)",
            "cached": stage.cached_from is not None,
            "queued_at": _when(stage.queued_at),
            "started_at": _when(stage.started_at),
            "finished_at": _when(stage.finished_at),
            "attempts": stage.attempts,
        }
        (bars if stage.started_at is not None else waiting).append(entry)
    return {"stages": bars, "not_started": waiting}


def example_inputs(settings: Settings, runs: Sequence[Run], stages: Sequence[Stage]) -> list[dict[str, Any]]:
    """A few rows of the model's input as the trainer wrote them, one set per translation mode, each
    with its original query and, where the experiment translates, the query's English."""
    from relctl_core.data import read_examples

    mode_of = {run.id: (run.config or {}).get("mode") or "orig" for run in runs if run.kind == "model"}
    english: dict[str, dict[str, str]] = {}
    for stage in stages:
        if stage.kind == "translate" and stage.status == DONE and stage.output:
            path = settings.artifact_root / stage.output["artifacts"]["english"]
            if path.is_file():
                english[(stage.config or {}).get("task", "")] = json.loads(path.read_text(encoding="utf-8"))
    queries: dict[str, dict[str, str]] = {}
    found = []
    for mode in sorted(set(mode_of.values())):
        stage = next((s for s in stages if s.kind == "train" and s.cache_key and mode_of.get(s.run_id or -1) == mode), None)
        if stage is None:
            continue
        rows_file = settings.artifact_root / "train" / stage.cache_key / "inputs" / "train.jsonl"  # type: ignore[operator]
        if not rows_file.is_file():
            continue
        task = (stage.config or {}).get("task", "")
        if task not in queries:
            ingest = next((s for s in stages if s.kind == "ingest" and s.output and (s.config or {}).get("task") == task), None)
            dataset = settings.artifact_root / ingest.output["artifacts"]["train"] if ingest and ingest.output else None
            queries[task] = {e.id: e.query for e in read_examples(dataset)} if dataset and dataset.is_file() else {}
        with rows_file.open(encoding="utf-8") as lines:
            picked = [json.loads(line) for _, line in zip(range(EXAMPLE_ROWS), lines, strict=False)]
        rows = []
        for row in picked:
            query = queries[task].get(str(row.get("id")))
            rows.append(
                {
                    "id": row.get("id"),
                    "language": row.get("language"),
                    "query": query,
                    "english": english.get(task, {}).get(query) if query is not None and mode != "orig" else None,
                    "query_text": row.get("query_text"),
                    "target_text": row.get("target_text"),
                    "label": row.get("label"),
                }
            )
        run = next(r for r in runs if r.id == stage.run_id)
        found.append({"mode": mode, "run": run.name, "stage": stage.label, "rows": rows})
    return found


@click.command()
@click.argument("experiment_ids", metavar="EXPERIMENT...", nargs=-1, required=True, type=int)
@click.option("--output", "-o", default="report.html", show_default=True, type=click.Path(path_type=Path), help="The HTML file to write.")
@click.option("--metric", default="f1@oof", show_default=True, type=click.Choice(RESAMPLED), metavar="METRIC", help=f"The leaderboard's metric, one of: {', '.join(RESAMPLED)} (ROC-AUC is always shown too).")
@click.option("--resamples", default=DEFAULT_RESAMPLES, show_default=True, type=click.IntRange(min=100), help="Bootstrap resamples per interval.")
@click.option("--seed", default=0, show_default=True, help="Seed of the resampling.")
def report(experiment_ids: tuple[int, ...], output: Path, metric: str, resamples: int, seed: int) -> None:
    """Write one self-contained HTML report of experiments, comparing them on one page.

    Per experiment: the leaderboard with each run's 95 % interval and whether it is told apart from
    the best run and from the better baseline; ROC and precision-recall curves; F1 against the
    threshold and the confusion matrix at the out-of-fold threshold; F1 and ROC-AUC per language
    beside the translator's chrF; training curves; the split audit; the stage timeline; example
    model inputs and the resolved spec. Several experiments add a combined leaderboard. The page
    needs no network: the plot library is inside it. An experiment still running is reported as far
    as it has got, with what is missing said; unknown experiments, or none scored, exit 2.

    \b
    Examples:
      relctl report 12
      relctl report 12 14 --output sweep.html --metric roc_auc
    """
    from relctl_core.migrate import check_database

    from relctl_evaluator.report_html import check_writable, render_page, write_page

    check_writable(output)
    settings = load_settings()
    check_database(settings.database_url)
    progress = StderrProgress("report")
    gathered = build_report(settings, experiment_ids, metric=metric, resamples=resamples, seed=seed, progress=progress)
    progress("drawing the figures")
    write_page(output, render_page(gathered))
    missing = sum(len(section["missing"]) for section in gathered["experiments"])
    note = f" ({missing} note{'s' if missing != 1 else ''} on what is missing)" if missing else ""
    click.echo(f"wrote {output}{note}")
