"""The stage graph: which stages an experiment needs, what each depends on, and on which queue it runs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from relctl_core import names
from relctl_core.names import TASK_CODES
from relctl_core.payloads import (
    BASELINES,
    STAGE_TWO_ONLY,
    BaselinePayload,
    DataFile,
    EvaluatePayload,
    IngestPayload,
    Payload,
    PretrainPayload,
    RunSettings,
    SplitPayload,
    StageOne,
    StageOneTrain,
    TrainPayload,
    TranslatePayload,
)

INGEST, TRANSLATE, SPLIT, PRETRAIN, TRAIN, BASELINE, EVALUATE = "ingest", "translate", "split", "pretrain", "train", "baseline", "evaluate"
# What each kind of stage's config holds: the planner renders it, the stage's service reads it back.
PAYLOADS: dict[str, type[Payload]] = {
    INGEST: IngestPayload,
    TRANSLATE: TranslatePayload,
    SPLIT: SplitPayload,
    PRETRAIN: PretrainPayload,
    TRAIN: TrainPayload,
    BASELINE: BaselinePayload,
    EVALUATE: EvaluatePayload,
}


def stable_hash(value: Any) -> str:
    """sha256 of a canonical JSON rendering: the basis of stage identity and cache keys."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


@dataclass
class PlannedStage:
    kind: str
    label: str
    config: dict[str, Any]
    depends_on: list[str]
    run: int | None = None  # index into Plan.runs of the run it belongs to (train, baseline, evaluate)
    gpu: str = "cpu"

    @property
    def key(self) -> str:
        return f"{self.kind}:{stable_hash([self.config, self.depends_on])[:16]}"

    @property
    def task_name(self) -> str:
        return {
            INGEST: names.INGEST,
            TRANSLATE: names.TRANSLATE,
            SPLIT: names.SPLIT,
            PRETRAIN: names.PRETRAIN,
            TRAIN: names.TRAIN,
            BASELINE: names.BASELINE,
            EVALUATE: names.EVALUATE,
        }[self.kind]


@dataclass
class PlannedRun:
    name: str
    kind: str  # "model" or "baseline"
    task: str
    config: dict[str, Any]


@dataclass
class Plan:
    runs: list[PlannedRun] = field(default_factory=list)
    stages: dict[str, PlannedStage] = field(default_factory=dict)

    def add(self, stage: PlannedStage) -> str:
        # Stages with the same config and inputs are one stage: runs of a sweep share ingest and split.
        self.stages.setdefault(stage.key, stage)
        return stage.key


def plan_experiment(run_specs: list[Any], data_files: dict[str, dict[str, Any]]) -> Plan:
    """Build the stage graph for the runs of an experiment.

    `run_specs` are relctl_core.spec.RunSpec; `data_files` maps a data file's path to its
    {"path", "sha256"} so that a stage's identity follows the content of its inputs.
    """
    plan = Plan()
    baseline_keys: set[tuple[str, str, str]] = set()
    for run_spec in run_specs:
        spec = run_spec.spec
        translation = spec.translation
        holdout = spec.split.holdout_fold
        # A holdout fold is no fold of the cross-validation: "all" trains every other fold.
        folds = [f for f in range(spec.split.folds) if f != holdout] if spec.split.train_folds == "all" else list(spec.split.train_folds)
        # Per task of the run (two for task: both): its data, translation and split.
        inputs: list[str] = []
        data_of: dict[str, tuple[str, str]] = {}
        for task_name in spec.tasks:
            ingest, translate = _data_stages(plan, spec, task_name, data_files)
            split = _split_stage(plan, spec, TASK_CODES[task_name], ingest)
            inputs += [ingest] + ([translate] if translate else []) + [split]
            data_of[TASK_CODES[task_name]] = (ingest, split)
        task = TASK_CODES[spec.task]
        run_settings = RunSettings(
            task=task,
            mode=translation.mode,
            model=spec.model,
            train=spec.train,
            resources=spec.resources,
            tasks=list(data_of) if spec.task == "both" else None,
        )
        run_index = len(plan.runs)
        plan.runs.append(PlannedRun(run_spec.name, "model", task, {"overrides": run_spec.overrides, **run_settings.config()}))
        pretrains = _pretrain_stages(plan, spec, run_settings, folds, list(data_of.get(task, ())), data_files)
        trains = [
            plan.add(
                PlannedStage(
                    TRAIN,
                    f"train {run_spec.name} fold {fold}",
                    TrainPayload(**dict(run_settings), fold=fold, holdout_fold=holdout).config(),
                    inputs + ([pretrains[fold]] if pretrains else []),
                    run=run_index,
                    gpu=spec.resources.gpu,
                )
            )
            for fold in folds
        ]
        combine = spec.ensemble.method
        for scored in data_of:  # a model for both tasks is scored on each, as its own task's runs are
            label = f"evaluate {run_spec.name}" + (f" {scored}" if len(data_of) > 1 else "")
            evaluate = EvaluatePayload(task=scored, folds=folds, combine=combine, holdout_fold=holdout).config()
            plan.add(PlannedStage(EVALUATE, label, evaluate, trains, run=run_index))

        for scored, (ingest, split) in data_of.items():
            # Baselines of one split with another holdout fold are fitted on other rows: baselines of their own.
            if not spec.baselines or (scored, ingest, split, holdout) in baseline_keys:
                continue
            baseline_keys.add((scored, ingest, split, holdout))
            # Several splits of one task (a sweep over split settings) each get their own baselines.
            same_task = sum(1 for key in baseline_keys if key[0] == scored)
            suffix = "" if same_task == 1 else f" #{same_task}"
            for baseline in BASELINES:
                run_name = f"baseline:{baseline}{suffix}"
                run_index = len(plan.runs)
                plan.runs.append(PlannedRun(run_name, "baseline", scored, {"baseline": baseline, "task": scored}))
                fold_stages = [
                    plan.add(
                        PlannedStage(
                            BASELINE,
                            f"baseline {baseline} {scored} fold {fold}",
                            BaselinePayload(task=scored, baseline=baseline, fold=fold, seed=spec.split.seed, holdout_fold=holdout).config(),
                            [ingest, split],
                            run=run_index,
                        )
                    )
                    for fold in folds
                ]
                evaluate = EvaluatePayload(task=scored, folds=folds, combine=combine, holdout_fold=holdout).config()
                plan.add(PlannedStage(EVALUATE, f"evaluate {run_name}", evaluate, fold_stages, run=run_index))
    return plan


def _split_stage(plan: Plan, spec: Any, task: str, ingest: str) -> str:
    split = spec.split
    config = SplitPayload(
        task=task, strategy=split.strategy, folds=split.folds, category_depth=split.category_depth, seed=split.seed
    ).config()
    return plan.add(PlannedStage(SPLIT, f"split {task} ({split.strategy}, {split.folds} folds)", config, [ingest]))


def _data_stages(plan: Plan, spec: Any, task_name: str, data_files: dict[str, dict[str, Any]]) -> tuple[str, str | None]:
    """The ingest stage of one task's data, and its translate stage when the experiment translates."""
    task = TASK_CODES[task_name]
    data = getattr(spec.data, task_name)
    ingest_config = IngestPayload(
        task=task,
        train=DataFile(**data_files[str(data.train)]),
        test=DataFile(**data_files[str(data.test)]) if data.test else None,
        cleaning=spec.cleaning,
        max_rows=data.max_rows,
        sample_seed=spec.split.seed,
    ).config()
    ingest = plan.add(PlannedStage(INGEST, f"ingest {task}", ingest_config, []))
    translation = spec.translation
    if not translation.enabled:
        return ingest, None
    translate_config = TranslatePayload(
        task=task,
        backend=translation.backend,
        model=translation.model,
        file=DataFile(**data_files[str(translation.path)]) if translation.path else None,
        batch_size=translation.batch_size,
    ).config()
    translate = plan.add(PlannedStage(TRANSLATE, f"translate {task} ({translation.backend})", translate_config, [ingest]))
    return ingest, translate


def _pretrain_stages(
    plan: Plan, spec: Any, run: RunSettings, folds: list[int], target: list[str], data_files: dict[str, dict[str, Any]]
) -> dict[int, str]:
    """TAPT stage 1 per fold: the auxiliary task's rows, less those whose query is in the target fold's
    validation rows or in its holdout fold (so that stage 1 never sees a query scored), train the
    adapter and head."""
    tapt = spec.train.tapt
    if tapt is None:
        return {}
    aux_ingest, aux_translate = _data_stages(plan, spec, tapt.aux_task, data_files)
    train = StageOneTrain(**{name: value for name, value in spec.train if name not in STAGE_TWO_ONLY})
    stage_one = StageOne(aux_task=TASK_CODES[tapt.aux_task], epochs=tapt.epochs, lr=tapt.lr or spec.train.lr, max_rows=tapt.max_rows)
    return {
        fold: plan.add(
            PlannedStage(
                PRETRAIN,
                f"pretrain {stage_one.aux_task} for {run.task} fold {fold}",
                PretrainPayload(
                    task=run.task,
                    mode=run.mode,
                    model=run.model,
                    train=train,
                    resources=run.resources,
                    tapt=stage_one,
                    fold=fold,
                    seed=spec.split.seed,
                    holdout_fold=spec.split.holdout_fold,
                ).config(),
                [*target, aux_ingest] + ([aux_translate] if aux_translate else []),
                gpu=spec.resources.gpu,
            )
        )
        for fold in folds
    }
