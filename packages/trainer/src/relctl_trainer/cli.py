"""`relctl predict`: predictions of a finished run's fold models, in the competition's submission format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click
from relctl_core.data import clean_examples, file_sha256, load_examples
from relctl_core.db import DONE, Experiment, Metric, Run, Stage, session_scope
from relctl_core.errors import InputError
from relctl_core.settings import load_settings
from relctl_core.translation_cache import lookup, model_key
from sqlalchemy import select


@click.command()
@click.argument("run_id", type=int)
@click.option("--input", "input_file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Rows to score (.txt/.jsonl/.csv/.parquet).")
@click.option("--output", "output_file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Where to write (.csv, else JSON lines).")
@click.option("--threshold", default=None, type=float, help="Decision threshold (default: the run's pooled out-of-fold F1 threshold).")
@click.option("--task", "task_name", type=click.Choice(["qc", "qi"]), default=None, help="The rows' task, for a run of task: both.")
def predict(run_id: int, input_file: Path, output_file: Path, threshold: float | None, task_name: str | None) -> None:
    """Score rows with the mean probability of a run's fold models.

    Writes id, language, query, target, prediction (0/1) and prob.

    \b
    Example:
      relctl predict 7 --input test_QC.txt --output submission.csv
      relctl predict 9 --task qi --input test_QI.txt --output submission_qi.csv   # a run of task: both
    """
    from relctl_core.experiments import check_services

    from relctl_trainer.inputs import TASK_TAGS, build_query_text
    from relctl_trainer.predict import predict_probs

    settings = load_settings()
    check_services(settings)
    with session_scope(settings.database_url) as session:
        run = session.get(Run, run_id)
        if run is None:
            raise InputError(f"no run {run_id} (see `relctl show EXPERIMENT`)")
        if run.kind != "model":
            raise InputError(f"run {run_id} is a {run.kind}: it keeps no model of its own to predict with")
        experiment = session.get(Experiment, run.experiment_id)
        assert experiment is not None
        stages = session.scalars(select(Stage).where(Stage.run_id == run_id, Stage.kind == "train", Stage.status == DONE)).all()
        model_dirs = [str(settings.artifact_root / s.output["artifacts"]["model"]) for s in stages if s.output]
        if not model_dirs:
            raise InputError(f"run {run_id} has no finished fold model")
        task = run.task
        if task == "BOTH":
            if task_name is None:
                raise InputError(f"run {run_id} is one model for both tasks: say which task the rows are with --task qc or --task qi")
            task = task_name.upper()
        elif task_name is not None and task_name.upper() != task:
            raise InputError(f"run {run_id} was trained for {task}, not {task_name.upper()}", path="--task")
        if threshold is None:
            threshold = session.scalar(
                select(Metric.value).where(
                    Metric.run_id == run_id, Metric.task == task, Metric.name == "threshold@oof.pooled", Metric.fold.is_(None), Metric.language.is_(None)
                )
            )
        spec, mode, routing = experiment.spec, run.config["mode"], run.config["model"].get("routing")
    threshold = 0.5 if threshold is None else threshold
    examples = load_examples(input_file, task, require_label=False)
    examples, _ = clean_examples(examples, source=str(input_file), **{**spec["cleaning"], "drop_empty": False})
    english: dict[str, str] = {}
    if mode != "orig":
        t = spec["translation"]
        file = {"path": t["path"], "sha256": file_sha256(t["path"])} if t.get("path") else None
        english = lookup(settings.database_url, t["backend"], model_key(t["backend"], t.get("model"), file), {e.query for e in examples})
        missing = sum(1 for e in examples if e.language != "en" and e.query not in english)
        if missing:
            click.echo(f"warning: {missing} queries have no cached translation; their original text is used", err=True)
    both = run.task == "BOTH"
    rows = [
        {
            "query_text": (f"{TASK_TAGS[task]} " if both and routing == "prefix" else "") + build_query_text(e.query, english.get(e.query), mode),
            "target_text": e.target,
            "task": task,
        }
        for e in examples
    ]
    probs = predict_probs(model_dirs, rows)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_file.with_name(output_file.name + ".tmp")
    fields = ["id", "language", "query", "target", "prediction", "prob"]
    with tmp.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fields) if output_file.suffix == ".csv" else None
        if writer:
            writer.writeheader()
        for e, p in zip(examples, probs, strict=True):
            row = {"id": e.id, "language": e.language, "query": e.query, "target": e.target, "prediction": int(p >= threshold), "prob": round(float(p), 6)}
            if writer:
                writer.writerow(row)
            else:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(output_file)
    click.echo(f"wrote {len(examples)} predictions of {len(model_dirs)} fold models (threshold {threshold:.3f}) to {output_file}")
