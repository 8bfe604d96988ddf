"""Submitting an experiment: validate everything up front, then write its graph and enqueue its first stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete

from relctl_core.db import Experiment, session_scope
from relctl_core.errors import InputError, first_line
from relctl_core.names import TASK_CODES
from relctl_core.pipeline import advance, write_experiment
from relctl_core.settings import Settings, redact_url
from relctl_core.stages import Plan, plan_experiment

if TYPE_CHECKING:
    from relctl_core.data import Example
    from relctl_core.spec import LoadedSpec, RunSpec


@dataclass
class Prepared:
    """A validated experiment, ready to be written: nothing here has touched the database."""

    path: Path
    text: str
    name: str
    spec: dict[str, Any]
    plan: Plan


def prepare(path: str | Path) -> Prepared:
    """Load and validate the spec, every run of its sweep and every data row it names, and check that
    each run's split can deal its rows out to its folds.

    Bad input raises InputError here, before a single row is written.
    """
    from relctl_core.data import clean_examples, file_sha256, load_examples
    from relctl_core.spec import expand_runs, load_spec, resolved_dict

    loaded = load_spec(path)
    runs = expand_runs(loaded)
    data_files: dict[str, dict[str, Any]] = {}
    # The cleaned rows of each file (train files' kept, for the split check), by how they were read.
    cleaned: dict[tuple[str, str, str, bool], list[Example]] = {}
    for run in runs:
        spec = run.spec
        cleaning = spec.cleaning.model_dump()
        # TAPT's stage 1 reads the auxiliary task's labelled rows: they are checked like the target's.
        tasks = [*spec.tasks] + ([spec.train.tapt.aux_task] if spec.train.tapt else [])
        for task_name in tasks:
            task = TASK_CODES[task_name]
            data = getattr(spec.data, task_name)
            for file, labelled in ((data.train, True), (data.test, False)):
                if file is None:
                    continue
                key = (str(file), task, repr(sorted(cleaning.items())), labelled)
                if key not in cleaned:
                    examples = load_examples(file, task, require_label=labelled)
                    rows, _ = clean_examples(examples, source=str(file), **cleaning)
                    cleaned[key] = rows if labelled else []
                data_files[str(file)] = {"path": str(file), "sha256": file_sha256(file)}
            if task_name in spec.tasks:
                train_rows = cleaned[(str(data.train), task, repr(sorted(cleaning.items())), True)]
                _check_split_fits(loaded, run, task_name, train_rows, str(path))
        if spec.translation.path is not None:
            data_files[str(spec.translation.path)] = {"path": str(spec.translation.path), "sha256": file_sha256(spec.translation.path)}
    return Prepared(loaded.path, loaded.text, loaded.spec.name, resolved_dict(loaded.spec), plan_experiment(runs, data_files))


def _check_split_fits(loaded: LoadedSpec, run: RunSpec, task_name: str, rows: list[Example], file: str) -> None:
    """The split stage deals a task's rows (cleaned, then sampled as ingest samples them) out to the
    folds by unit (a query, a category group or a row): fewer units than folds cannot be split."""
    from relctl_core.data import sample_examples, split_units
    from relctl_core.spec import setting_error

    spec = run.spec
    data, split = getattr(spec.data, task_name), spec.split
    if data.max_rows:
        rows = sample_examples(rows, data.max_rows, split.seed)
    units, what = split_units(rows, TASK_CODES[task_name], split.strategy, split.category_depth)
    if units < split.folds:
        depth = f" at split.category_depth {split.category_depth}" if what == "category groups" else ""
        sampled = f" (its max_rows sample of {len(rows)} rows)" if data.max_rows else ""
        message = f"{split.folds} folds need {split.folds} {what}{depth}, but data.{task_name}.train has {units}{sampled}"
        raise setting_error(loaded, run, ("split", "folds"), message, file=file)


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
    from relctl_core.payloads import TrainPayload, TranslatePayload
    from relctl_core.spec import DEFAULT_TRANSLATION_MODELS

    for stage in prepared.plan.stages.values():
        if stage.kind == "train":
            resolve_backbone(settings, TrainPayload.model_validate(stage.config).model.backbone)
        if stage.kind == "translate":
            translate = TranslatePayload.model_validate(stage.config)
            model = translate.model or DEFAULT_TRANSLATION_MODELS.get(translate.backend)
            if translate.backend in ("causal-lm", "seq2seq") and model:
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
