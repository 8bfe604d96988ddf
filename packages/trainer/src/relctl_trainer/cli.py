"""`relctl predict`: predictions of a finished run's fold models, in the competition's submission format.

The rows are read as the run's own rows were: cleaned by the experiment's cleaning and, for a run that
reads translations (translation.mode en or orig+en), with their queries' English from the run's own
translator, taken from the translation cache or translated now by that translator and added to it. Each
row is written with its id and texts as the input file holds them. Progress goes to stderr, predictions
to the output file.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from relctl_core.data import Example, clean_examples, load_examples_with_ids
from relctl_core.db import DONE, Experiment, Metric, Run, Stage, session_scope
from relctl_core.errors import InputError
from relctl_core.leaderboard import THRESHOLD
from relctl_core.payloads import TranslatePayload
from relctl_core.settings import Settings, load_settings
from sqlalchemy import select
from sqlalchemy.orm import Session


@click.command()
@click.argument("run_id", type=int)
@click.option("--input", "input_file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Rows to score (.txt/.jsonl/.csv/.parquet).")
@click.option("--output", "output_file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Where to write (.csv, else JSON lines).")
@click.option("--threshold", default=None, type=float, help="Decision threshold (default: the run's pooled out-of-fold F1 threshold).")
@click.option("--task", "task_name", type=click.Choice(["qc", "qi"]), default=None, help="The rows' task, for a run of task: both.")
def predict(run_id: int, input_file: Path, output_file: Path, threshold: float | None, task_name: str | None) -> None:
    """Score rows with the mean probability of a run's fold models.

    Writes id, language, query, target (as the input has them), prediction (0/1) and prob. A run
    trained on translated queries gets the input's queries translated by its own translator first
    (from the translation cache where it has them). The threshold is the one the run's evaluate stage
    tuned on its out-of-fold rows, unless --threshold gives one; which it is goes to stderr.

    \b
    Example:
      relctl predict 7 --input test_QC.txt --output submission.csv
      relctl predict 9 --task qi --input test_QI.txt --output submission_qi.csv   # a run of task: both
    """
    from relctl_core.experiments import check_services
    from relctl_core.targets import target_text

    from relctl_trainer.inputs import TASK_TAGS, build_query_text
    from relctl_trainer.predict import predict_probs, quiet_libraries

    def say(message: str) -> None:
        click.echo(message, err=True)

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(f"must be between 0 and 1, got {threshold}", path="--threshold")
    settings = load_settings()
    check_services(settings, broker=False)  # the broker, only where the translator is reached through it
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
        threshold, source = run_threshold(session, run, task, threshold)
        spec, mode, routing = experiment.spec, run.config["mode"], run.config["model"].get("routing")
        target_form = run.config["model"].get("target_form")  # read as the run's training rows were
        translator = run_translator(session, settings, run, task) if mode != "orig" else None
    say(f"threshold {threshold:.4f}: {source}")
    examples, ids = load_examples_with_ids(input_file, task, require_label=False)
    # As ingest cleans test rows: every row kept, so that the cleaned rows line up with the input's.
    cleaned, _ = clean_examples(examples, source=str(input_file), **{**spec["cleaning"], "drop_empty": False})
    with quiet_libraries():
        try:
            english = english_of_queries(settings, translator, cleaned, say) if translator else {}
        except KeyboardInterrupt:
            say("stopped: no predictions written")
            sys.exit(130)
        both = run.task == "BOTH"
        rows = [
            {
                "query_text": (f"{TASK_TAGS[task]} " if both and routing == "prefix" else "") + build_query_text(e.query, english.get(e.query), mode),
                "target_text": target_text(e.target, task, target_form),
                "task": task,
            }
            for e in cleaned
        ]
        say(f"scoring {len(rows)} rows with the {len(model_dirs)} fold model{'' if len(model_dirs) == 1 else 's'} of run {run_id}")
        probs = predict_probs(model_dirs, rows)
    write_predictions(output_file, ids, examples, probs, threshold)
    say(f"wrote {len(examples)} predictions (threshold {threshold:.4f}) to {output_file}")


def run_threshold(session: Session, run: Run, task: str, given: float | None) -> tuple[float, str]:
    """The decision threshold and where it comes from: --threshold, or the pooled out-of-fold F1 threshold
    that the run's evaluate stage of ``task`` tuned; a run whose evaluate stage has not finished has none."""
    if given is not None:
        return given, "given with --threshold"
    evaluations = session.scalars(select(Stage).where(Stage.run_id == run.id, Stage.kind == "evaluate").order_by(Stage.id)).all()
    stage = next((s for s in evaluations if s.config.get("task") == task), None)
    if stage is None:
        raise InputError(f"run {run.id} has no evaluate stage for {task}, so no tuned threshold: give one with --threshold", path="--threshold")
    if stage.status != DONE:
        raise InputError(
            f"run {run.id} has no tuned threshold yet: its evaluate stage ({stage.label}) is {stage.status}; wait until it is done "
            f"(relctl status {run.experiment_id}), or give a threshold with --threshold",
            path="--threshold",
        )
    value = session.scalar(
        select(Metric.value).where(Metric.stage_id == stage.id, Metric.name == THRESHOLD, Metric.fold.is_(None), Metric.language.is_(None))
    )
    if value is None:
        raise InputError(
            f"run {run.id}'s evaluate stage ({stage.label}) tuned no threshold (its out-of-fold rows allow none): give one with --threshold",
            path="--threshold",
        )
    return float(value), f"the pooled out-of-fold F1 threshold of run {run.id} ({stage.label}, stage {stage.id})"


@dataclass(frozen=True)
class RunTranslator:
    """The translator a run's rows were translated by: its translate stage's config, and the cache key the
    stage stored its translations under (None where that cannot be known here: the translator knows it)."""

    config: TranslatePayload
    key: str | None


def run_translator(session: Session, settings: Settings, run: Run, task: str) -> RunTranslator:
    """The translator of the translate stage whose English the run's fold models of ``task`` were trained on."""
    from relctl_core.translation_cache import stage_model_key

    trains = session.scalars(select(Stage).where(Stage.run_id == run.id, Stage.kind == "train")).all()
    inputs = sorted({dep for stage in trains for dep in stage.depends_on})
    translates = session.scalars(select(Stage).where(Stage.id.in_(inputs), Stage.kind == "translate").order_by(Stage.id)).all()
    stage = next((s for s in translates if s.config.get("task") == task), None)
    if stage is None or stage.status != DONE or not stage.output:
        state = "has none" if stage is None else f"is {stage.status}"
        raise InputError(f"run {run.id} reads translated queries (translation.mode {run.config['mode']}) but its translate stage for {task} {state}")
    config = TranslatePayload.model_validate(stage.config)
    file = config.file.model_dump() if config.file else None
    return RunTranslator(config, stage_model_key(stage.output, config.backend, config.model, file, settings))


def english_of_queries(settings: Settings, translator: RunTranslator, examples: Sequence[Example], say: Callable[[str], None]) -> dict[str, str]:
    """query -> English for the rows' queries, by the run's translator, as its translate stage made them:
    a query in English as written; the others from the translation cache, or translated now (and cached)."""
    from relctl_core.experiments import check_services
    from relctl_core.translation_cache import lookup
    from relctl_core.translation_requests import request_translations

    language_of: dict[str, str] = {}
    for example in examples:
        language_of.setdefault(example.query, example.language)
    foreign = {query: language for query, language in language_of.items() if language != "en"}
    config = translator.config
    english = lookup(settings.database_url, config.backend, translator.key, foreign) if translator.key is not None else {}
    missing = [query for query in foreign if query not in english]
    say(f"{len(foreign)} queries to translate ({config.backend}): {len(foreign) - len(missing)} in the translation cache, {len(missing)} not")
    if missing:
        if not settings.embedded_broker:
            check_services(settings)
        answer = request_translations(settings, config, missing, [foreign[q] for q in missing], expect_model=translator.key, say=say)
        english.update({query: answer.english[query] for query in missing if query in answer.english})
        failed = answer.summary.get("failed", 0)
        if failed:
            say(f"warning: the translator failed on {failed} of them; they are read as written, as the run's translate stage reads its failures")
    return english


def write_predictions(output_file: Path, ids: Sequence[int | str], examples: Sequence[Example], probs: Any, threshold: float) -> None:
    """One row per input row, in input order, with its id, language and texts as the input has them."""
    output_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_file.with_name(output_file.name + ".tmp")
    fields = ["id", "language", "query", "target", "prediction", "prob"]
    with tmp.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fields) if output_file.suffix == ".csv" else None
        if writer:
            writer.writeheader()
        for row_id, e, p in zip(ids, examples, probs, strict=True):
            row = {"id": row_id, "language": e.language, "query": e.query, "target": e.target, "prediction": int(p >= threshold), "prob": round(float(p), 6)}
            if writer:
                writer.writerow(row)
            else:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(output_file)
