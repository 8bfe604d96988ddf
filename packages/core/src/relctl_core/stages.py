"""The stage graph: which stages an experiment needs, what each depends on, and on which queue it runs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from relctl_core import names

INGEST, TRANSLATE, SPLIT, PRETRAIN, TRAIN, BASELINE, EVALUATE = "ingest", "translate", "split", "pretrain", "train", "baseline", "evaluate"
BASELINES = ("all-relevant", "lexical")
TASK_CODES = {"qc": "QC", "qi": "QI", "both": "BOTH"}


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
        folds = list(range(spec.split.folds)) if spec.split.train_folds == "all" else list(spec.split.train_folds)
        # Per task of the run (two for task: both): its data, translation and split.
        inputs: list[str] = []
        data_of: dict[str, tuple[str, str]] = {}
        for task_name in spec.tasks:
            ingest, translate = _data_stages(plan, spec, task_name, data_files)
            split = _split_stage(plan, spec, TASK_CODES[task_name], ingest)
            inputs += [ingest] + ([translate] if translate else []) + [split]
            data_of[TASK_CODES[task_name]] = (ingest, split)
        task = TASK_CODES[spec.task]
        run_config = {
            "task": task,
            "mode": translation.mode,
            "model": _settings(spec.model, "private_layers"),
            "train": spec.train.model_dump(mode="json", exclude={"time_limit"}),
            "resources": _settings(spec.resources, "launcher", "zero_stage"),
        }
        if spec.task == "both":
            run_config["tasks"] = list(data_of)
        run_index = len(plan.runs)
        plan.runs.append(PlannedRun(run_spec.name, "model", task, {"overrides": run_spec.overrides, **run_config}))
        pretrains = _pretrain_stages(plan, spec, run_config, folds, list(data_of.get(task, ())), data_files)
        trains = [
            plan.add(
                PlannedStage(
                    TRAIN,
                    f"train {run_spec.name} fold {fold}",
                    {**run_config, "fold": fold, **_time_limit(spec)},
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
            plan.add(PlannedStage(EVALUATE, label, {"task": scored, "folds": folds, "combine": combine}, trains, run=run_index))

        for scored, (ingest, split) in data_of.items():
            if not spec.baselines or (scored, ingest, split) in baseline_keys:
                continue
            baseline_keys.add((scored, ingest, split))
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
                            {"task": scored, "baseline": baseline, "fold": fold, "seed": spec.split.seed},
                            [ingest, split],
                            run=run_index,
                        )
                    )
                    for fold in folds
                ]
                plan.add(
                    PlannedStage(EVALUATE, f"evaluate {run_name}", {"task": scored, "folds": folds, "combine": combine}, fold_stages, run=run_index)
                )
    return plan


def _split_stage(plan: Plan, spec: Any, task: str, ingest: str) -> str:
    split_cfg = spec.split.model_dump(mode="json")
    return plan.add(
        PlannedStage(
            SPLIT,
            f"split {task} ({spec.split.strategy}, {spec.split.folds} folds)",
            {"task": task, **{k: split_cfg[k] for k in ("strategy", "folds", "category_depth", "seed")}},
            [ingest],
        )
    )


def _data_stages(plan: Plan, spec: Any, task_name: str, data_files: dict[str, dict[str, Any]]) -> tuple[str, str | None]:
    """The ingest stage of one task's data, and its translate stage when the experiment translates."""
    task = TASK_CODES[task_name]
    data = getattr(spec.data, task_name)
    ingest = plan.add(
        PlannedStage(
            INGEST,
            f"ingest {task}",
            {
                "task": task,
                "train": data_files[str(data.train)],
                "test": data_files[str(data.test)] if data.test else None,
                "cleaning": spec.cleaning.model_dump(mode="json"),
                "max_rows": data.max_rows,
                "sample_seed": spec.split.seed,
            },
            [],
        )
    )
    translation = spec.translation
    if not translation.enabled:
        return ingest, None
    translate = plan.add(
        PlannedStage(
            TRANSLATE,
            f"translate {task} ({translation.backend})",
            {
                "task": task,
                "backend": translation.backend,
                "model": translation.model,
                "file": data_files[str(translation.path)] if translation.path else None,
                "batch_size": translation.batch_size,
            },
            [ingest],
        )
    )
    return ingest, translate


# Settings of train that stage 2 alone uses: runs that differ only in these share their stage 1.
_STAGE_TWO_ONLY = ("epochs", "lr", "max_steps", "tapt")


def _pretrain_stages(
    plan: Plan, spec: Any, run_config: dict[str, Any], folds: list[int], target: list[str], data_files: dict[str, dict[str, Any]]
) -> dict[int, str]:
    """TAPT stage 1 per fold: the auxiliary task's rows, less those whose query is in the target fold's
    validation rows (so that stage 1 never sees a validation query), train the adapter and head."""
    tapt = spec.train.tapt
    if tapt is None:
        return {}
    aux_ingest, aux_translate = _data_stages(plan, spec, tapt.aux_task, data_files)
    train = {k: v for k, v in run_config["train"].items() if k not in _STAGE_TWO_ONLY}
    stage_one = {"aux_task": TASK_CODES[tapt.aux_task], "epochs": tapt.epochs, "lr": tapt.lr or spec.train.lr, "max_rows": tapt.max_rows}
    return {
        fold: plan.add(
            PlannedStage(
                PRETRAIN,
                f"pretrain {stage_one['aux_task']} for {run_config['task']} fold {fold}",
                {
                    "task": run_config["task"],
                    "mode": run_config["mode"],
                    "model": run_config["model"],
                    "train": train,
                    "resources": run_config["resources"],
                    "tapt": stage_one,
                    "fold": fold,
                    "seed": spec.split.seed,
                    **_time_limit(spec),
                },
                [*target, aux_ingest] + ([aux_translate] if aux_translate else []),
                gpu=spec.resources.gpu,
            )
        )
        for fold in folds
    }


def _time_limit(spec: Any) -> dict[str, Any]:
    """A training's time limit says how long it may run, not what it computes: it stays out of the
    train settings (and so out of the cache key, see pipeline.PLACEMENT_KEYS), and out of the config
    altogether while unset."""
    limit = spec.train.time_limit
    return {} if limit is None else {"time_limit": limit}


def _settings(section: Any, *later: str) -> dict[str, Any]:
    """A spec section's settings for the stages' configs. Settings added in ``later`` versions are left
    out while unset, so that the stages of runs that do not use them keep their keys (and cached
    results) from before the settings existed."""
    config = section.model_dump(mode="json")
    for name in later:
        if config[name] is None:
            del config[name]
    return config
