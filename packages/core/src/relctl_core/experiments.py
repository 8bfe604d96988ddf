"""Submitting an experiment: validate everything up front, then write its graph and enqueue its first stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from relctl_core.db import Experiment, session_scope
from relctl_core.errors import InputError, first_line
from relctl_core.pipeline import advance, write_experiment
from relctl_core.settings import Settings, redact_url
from relctl_core.stages import TASK_CODES, Plan, plan_experiment


@dataclass
class Prepared:
    """A validated experiment, ready to be written: nothing here has touched the database."""

    path: Path
    text: str
    name: str
    spec: dict[str, Any]
    plan: Plan


def prepare(path: str | Path) -> Prepared:
    """Load and validate the spec, every run of its sweep and every data row it names.

    Bad input raises InputError here, before a single row is written.
    """
    from relctl_core.data import clean_examples, file_sha256, load_examples
    from relctl_core.spec import expand_runs, load_spec, resolved_dict

    loaded = load_spec(path)
    runs = expand_runs(loaded)
    data_files: dict[str, dict[str, Any]] = {}
    checked: set[tuple[str, str, str]] = set()
    for run in runs:
        spec = run.spec
        # TAPT's stage 1 reads the auxiliary task's labelled rows: they are checked like the target's.
        tasks = [*spec.tasks] + ([spec.train.tapt.aux_task] if spec.train.tapt else [])
        for task_name in tasks:
            task = TASK_CODES[task_name]
            data = getattr(spec.data, task_name)
            for file, require_label in ((data.train, True), (data.test, False)):
                if file is None:
                    continue
                cleaning = spec.cleaning.model_dump()
                key = (str(file), task, repr(sorted(cleaning.items())))
                if key not in checked:
                    checked.add(key)
                    examples = load_examples(file, task, require_label=require_label)
                    clean_examples(examples, source=str(file), **cleaning)
                data_files[str(file)] = {"path": str(file), "sha256": file_sha256(file)}
        if spec.translation.path is not None:
            data_files[str(spec.translation.path)] = {"path": str(spec.translation.path), "sha256": file_sha256(spec.translation.path)}
    return Prepared(loaded.path, loaded.text, loaded.spec.name, resolved_dict(loaded.spec), plan_experiment(runs, data_files))


def check_services(settings: Settings, *, broker: bool = True) -> None:
    """Fail fast, as bad input, when the run database (or, unless broker=False, the broker) cannot be reached."""
    from relctl_core.migrate import check_database

    check_database(settings.database_url)
    if settings.embedded_broker or not broker:
        return
    from relctl_core.celery_app import get_app

    try:
        with get_app().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
    except Exception as exc:
        raise InputError(f"cannot reach the broker {redact_url(settings.broker_url)}: {first_line(exc)}", path="RELCTL_BROKER_URL") from None


def check_backbones(settings: Settings, prepared: Prepared) -> None:
    """With the embedded default the trainings run here: a model missing from this model store is
    bad input now, not a failed training after the other stages ran."""
    from relctl_core.modelstore import resolve_backbone
    from relctl_core.spec import DEFAULT_TRANSLATION_MODELS

    for stage in prepared.plan.stages.values():
        if stage.kind == "train":
            resolve_backbone(settings, stage.config["model"]["backbone"])
        if stage.kind == "translate" and stage.config["backend"] in ("causal-lm", "seq2seq"):
            model = stage.config.get("model") or DEFAULT_TRANSLATION_MODELS.get(stage.config["backend"])
            if model:
                resolve_backbone(settings, model, path="translation.model")


def submit(settings: Settings, path: str | Path, *, prepared: Prepared | None = None) -> int:
    """Validate, write the experiment (runs, stages) and enqueue its first stages. Returns its id.

    If the broker refuses the first messages, the experiment's rows are removed again: a failed
    submit leaves nothing half-written behind.
    """
    prepared = prepared or prepare(path)
    check_services(settings)
    if settings.embedded_broker:
        check_backbones(settings, prepared)
    with session_scope(settings.database_url) as session:
        experiment_id = write_experiment(
            session, name=prepared.name, spec_path=str(prepared.path), spec_text=prepared.text, spec=prepared.spec, plan=prepared.plan
        )
    try:
        advance(settings, experiment_id)
    except Exception as exc:
        with session_scope(settings.database_url) as session:
            session.execute(delete(Experiment).where(Experiment.id == experiment_id))
        raise InputError(f"cannot enqueue on the broker {redact_url(settings.broker_url)}: {first_line(exc)}", path="RELCTL_BROKER_URL") from None
    return experiment_id
