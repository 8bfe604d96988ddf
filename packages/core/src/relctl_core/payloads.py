"""The stage payloads: what each stage's config holds, as typed models built from the spec's own sections.

The planner (stages.py) renders a payload into a stage's config, and each service reads its config
back through the same model (``TrainPayload.model_validate(ctx.config)``). A setting's type and bounds
are declared once, in spec.py: a payload field is either a spec section itself (``model: ModelSpec``)
or one spec field copied by ``spec_field``, which tests/test_spec_drift.py holds to the spec's.

A stage's config is hashed into its identity and its cache key (stages.PlannedStage.key,
pipeline._begin), so ``Payload.config()`` renders exactly the JSON the planner wrote before there were
payloads: settings that came in later versions are left out while unset (``OMITTED_WHILE_UNSET``),
and packages/core/tests/planned_stages.json records the configs of representative experiments.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, create_model

from relctl_core.spec import (
    CleaningSpec,
    DataSpec,
    EnsembleSpec,
    ModelSpec,
    ResourcesSpec,
    SplitSpec,
    TaptSpec,
    TrainSpec,
    TranslationSpec,
)

TaskCode = Literal["QC", "QI"]
RunTaskCode = Literal["QC", "QI", "BOTH"]
Baseline = Literal["all-relevant", "lexical"]
BASELINES: tuple[str, ...] = get_args(Baseline)
FoldNumber = Annotated[int, Field(ge=0)]


@dataclass(frozen=True)
class FromSpec:
    """Marks a payload field as a copy of the spec field ``section.name`` (see spec_field)."""

    section: type[BaseModel]
    name: str


def spec_field(section: type[BaseModel], name: str, *, description: str | None = None) -> Any:
    """A field that is the spec field ``section.name``: its default, its bounds and its description (or
    ``description``, where the payload uses the setting in a narrower sense), declared once in spec.py.

    The field's annotation must be the spec field's; tests/test_spec_drift.py checks that it is and that
    the bounds still agree, through the FromSpec mark this adds.
    """
    source = section.model_fields[name]
    field = copy.copy(source)
    field.metadata = [*source.metadata, FromSpec(section, name)]
    if description is not None:
        field.description = description
    return field


def spec_source(field: Any) -> FromSpec | None:
    """The spec field a payload field copies, if it is one (a pydantic FieldInfo made by spec_field)."""
    return next((mark for mark in field.metadata if isinstance(mark, FromSpec)), None)


class Payload(BaseModel):
    """A stage's config: ``config()`` renders it for the planner, ``model_validate`` reads it back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def config(self) -> dict[str, Any]:
        """The config as JSON-ready data, in field order, without the keys left out while unset."""
        return _rendered(self)


def _rendered(model: BaseModel) -> dict[str, Any]:
    data = model.model_dump(mode="json")
    omitted = {name for cls in type(model).__mro__ for name in OMITTED_WHILE_UNSET.get(cls, ())}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if value is None and name in omitted:
            del data[name]
        elif isinstance(value, BaseModel):
            data[name] = _rendered(value)
    return data


class DataFile(BaseModel):
    """A file a stage reads, as its identity knows it: the path, and the sha256 of the content, so that
    a stage whose file changed is a new stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="Absolute path on the host that submitted the experiment.")
    sha256: str = Field(description="sha256 of the file's bytes when it was submitted.")


class IngestPayload(Payload):
    """ingest: load, validate, clean and sample one task's labelled rows (and its test rows)."""

    task: TaskCode = Field(description="The task whose data this is.")
    train: DataFile = Field(description="data.<task>.train.")
    test: DataFile | None = Field(None, description="data.<task>.test; none without test rows.")
    cleaning: CleaningSpec
    max_rows: int | None = spec_field(DataSpec, "max_rows")
    sample_seed: int = spec_field(SplitSpec, "seed", description="split.seed: draws the max_rows sample.")


class TranslatePayload(Payload):
    """translate: English for every query of one task's data."""

    task: TaskCode = Field(description="The task whose queries these are.")
    backend: Literal["identity", "file", "causal-lm", "seq2seq", "apertium"] = spec_field(TranslationSpec, "backend")
    model: str | None = spec_field(TranslationSpec, "model")
    file: DataFile | None = Field(None, description="translation.path: the file backend's table.")
    batch_size: int = spec_field(TranslationSpec, "batch_size")


class TranslationRequest(Payload):
    """translate_texts: English for some queries outside any stage (`relctl predict`), by a run's translator."""

    translation: TranslatePayload = Field(description="The config of the translate stage whose translator to use.")
    texts: list[str] = Field(description="The queries, as the run's cleaning left them.")
    languages: list[str] = Field(description="The language of each query.")
    expect_model: str | None = Field(
        None, description="The cache key the translate stage stored its translations under: another one now is refused."
    )
    reply: str | None = Field(None, description="Where to write the answer, relative to the artifact root (none: only returned).")


class SplitPayload(Payload):
    """split: the fold of every row of one task's data."""

    task: TaskCode = Field(description="The task whose rows are split.")
    strategy: Literal["category-aware", "random", "stratified"] = spec_field(SplitSpec, "strategy")
    folds: int = spec_field(SplitSpec, "folds")
    category_depth: int = spec_field(SplitSpec, "category_depth")
    seed: int = spec_field(SplitSpec, "seed")


class RunSettings(Payload):
    """What a model run trains: the settings its train stages share (also the run's own config)."""

    task: RunTaskCode = Field(description="The run's task; BOTH: one model for both tasks.")
    mode: Literal["orig", "en", "orig+en"] = spec_field(TranslationSpec, "mode")
    model: ModelSpec
    train: TrainSpec
    resources: ResourcesSpec
    tasks: list[TaskCode] | None = Field(
        None, min_length=2, description="task BOTH: the tasks the one model trains on, in order."
    )


class TrainPayload(RunSettings):
    """train: one fold of one run (stage 2 of TAPT: it continues the fold's pretrain stage)."""

    fold: FoldNumber = Field(description="The fold held out for validation.")
    holdout_fold: int | None = spec_field(
        SplitSpec, "holdout_fold", description="split.holdout_fold: a fold neither trained nor validated on, predicted once trained."
    )


# Settings of train that stage 2 alone uses: runs that differ only in these share their stage 1.
STAGE_TWO_ONLY = ("epochs", "lr", "max_steps", "tapt")

StageOneTrain = create_model(
    "StageOneTrain",
    __config__=ConfigDict(extra="forbid", frozen=True),
    __doc__="The train settings TAPT's stage 1 shares with stage 2: all but STAGE_TWO_ONLY.",
    **{
        name: (info.annotation, spec_field(TrainSpec, name))
        for name, info in TrainSpec.model_fields.items()
        if name not in STAGE_TWO_ONLY
    },
)


class StageOne(BaseModel):
    """TAPT's stage 1 settings: the auxiliary task, how long and how fast to train on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aux_task: TaskCode = Field(description="train.tapt.aux_task: the task whose rows stage 1 trains on.")
    epochs: int = spec_field(TaptSpec, "epochs")
    lr: float = spec_field(TrainSpec, "lr", description="train.tapt.lr, or train.lr where that is unset.")
    max_rows: int | None = spec_field(TaptSpec, "max_rows")


class PretrainPayload(Payload):
    """pretrain: TAPT's stage 1 for one fold of a run, on the auxiliary task's rows less the fold's
    validation queries."""

    task: TaskCode = Field(description="The target task: the task of the run that stage 2 trains.")
    mode: Literal["orig", "en", "orig+en"] = spec_field(TranslationSpec, "mode")
    model: ModelSpec
    train: StageOneTrain
    resources: ResourcesSpec
    tapt: StageOne
    fold: FoldNumber = Field(description="The target task's fold whose validation queries stage 1 leaves out.")
    seed: int = spec_field(SplitSpec, "seed", description="split.seed: draws the tapt.max_rows sample.")
    holdout_fold: int | None = spec_field(
        SplitSpec, "holdout_fold", description="split.holdout_fold: the target task's fold whose queries stage 1 also leaves out."
    )

    def stage_train(self) -> TrainSpec:
        """Stage 1's optimisation settings as a train section: stage 2's, at tapt's length and rate."""
        return TrainSpec.model_validate({**self.train.model_dump(), "epochs": self.tapt.epochs, "lr": self.tapt.lr})


class BaselinePayload(Payload):
    """baseline: one baseline fitted on one fold and scored on its validation rows."""

    task: TaskCode = Field(description="The task scored.")
    baseline: Baseline = Field(description="all-relevant: every row relevant; lexical: TF-IDF + logistic regression.")
    fold: FoldNumber = Field(description="The fold held out for validation.")
    seed: int = spec_field(SplitSpec, "seed", description="split.seed: seeds the lexical baseline's fit.")
    holdout_fold: int | None = spec_field(
        SplitSpec, "holdout_fold", description="split.holdout_fold: a fold neither fitted nor validated on, predicted once fitted."
    )


class EnsembleMember(BaseModel):
    """One run of an ensemble (`relctl ensemble`), with the folds its fold stages hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: int = Field(description="The run's id.")
    name: str = Field(description="The run's name.")
    folds: list[FoldNumber] = Field(description="The folds of its fold stages, in the order it depends on them.")


class EvaluatePayload(Payload):
    """evaluate: score a run's (or an ensemble's) out-of-fold predictions over its folds, and with a
    holdout fold, each fold model's and the ensemble's predictions of the holdout rows."""

    task: TaskCode = Field(description="The task scored (a model for both tasks is scored on each).")
    folds: list[FoldNumber] = Field(min_length=1, description="The folds scored.")
    combine: Literal["mean", "vote"] = spec_field(EnsembleSpec, "method")
    members: list[EnsembleMember] | None = Field(None, description="An ensemble's runs; none for a run's own scores.")
    holdout_fold: int | None = spec_field(
        SplitSpec, "holdout_fold", description="split.holdout_fold: the fold whose rows the fold models predicted, scored apart."
    )


# Keys a config leaves out while they are unset. Settings added to the spec after stages were first
# cached: the stages of specs that do not use them keep their configs, keys and cached results from
# before the settings existed. And keys only some stages of a kind hold.
OMITTED_WHILE_UNSET: dict[type[BaseModel], tuple[str, ...]] = {
    ModelSpec: ("private_layers", "target_form"),
    TrainSpec: ("time_limit",),
    StageOneTrain: ("time_limit",),
    ResourcesSpec: ("launcher", "zero_stage"),
    RunSettings: ("tasks",),
    TrainPayload: ("holdout_fold",),
    PretrainPayload: ("holdout_fold",),
    BaselinePayload: ("holdout_fold",),
    EvaluatePayload: ("members", "holdout_fold"),
}

# Spec settings that no payload field carries as they are, and what the planner makes of them instead.
# Every other spec field reaches the stages as a payload field (tests/test_spec_drift.py checks both).
PLANNED_NOT_CARRIED = {
    "name": "names the experiment, not a stage",
    "task": "carried as task codes: each stage's task (QC, QI), a run's task (BOTH for task both)",
    "data.qc.train": "carried as the ingest stage's train file, with its content hash",
    "data.qc.test": "carried as the ingest stage's test file, with its content hash",
    "data.qi.train": "carried as the ingest stage's train file, with its content hash",
    "data.qi.test": "carried as the ingest stage's test file, with its content hash",
    "translation.enabled": "decides whether translate stages are planned",
    "translation.path": "carried as the translate stage's file, with its content hash",
    "split.train_folds": "decides which folds get train and baseline stages; each carries its fold",
    "baselines": "decides whether baseline stages are planned",
    "sweep": "expanded into runs before planning",
    "sweep_mode": "decides how the sweep expands into runs, before planning",
}
