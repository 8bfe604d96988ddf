"""Stage configs: representative experiments plan the same stages, configs and keys as recorded.

A stage's config is hashed into its identity and cache key, so a change to how an existing spec is
planned would stop existing experiments from reusing their finished stages. Run this module as a
script (``python packages/core/tests/test_payloads.py``) to record the configs again only when such a
change is meant.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

RECORDED = Path(__file__).with_name("planned_stages.json")
DATA_FILES = ("qc.jsonl", "qc_test.jsonl", "qi.jsonl", "qi_test.jsonl", "en.tsv")

CASES = {
    "defaults": """\
name: defaults
data: {qc: {train: qc.jsonl}}
""",
    "qi-translated-sweep": """\
name: qi-translated-sweep
task: qi
data: {qi: {train: qi.jsonl, test: qi_test.jsonl, max_rows: 500}}
cleaning: {lowercase: false}
translation: {enabled: true, mode: orig+en, backend: causal-lm, batch_size: 16}
split: {strategy: random, folds: 3, train_folds: all, seed: 7}
model:
  lora: {dropout: 0.05, target_modules: [query, value]}
train: {epochs: 1, scheduler: constant, warmup_ratio: 0, max_steps: 10, checkpoint_steps: null, precision: fp32}
ensemble: {method: vote}
sweep:
  model.lora.r: [4, 16]
  train.lr: [0.001, 2.0e-5]
""",
    "both-private-deepspeed": """\
name: both-private-deepspeed
task: both
data: {qc: {train: qc.jsonl, test: qc_test.jsonl}, qi: {train: qi.jsonl}}
translation: {enabled: true, mode: en, backend: seq2seq, model: google/madlad400-3b-mt}
model: {routing: heads+private, private_layers: 3}
resources: {gpu: A100, gpus: 2, launcher: deepspeed, zero_stage: 3}
baselines: false
""",
    "tapt-file-translation": """\
name: tapt-file-translation
data: {qc: {train: qc.jsonl}, qi: {train: qi.jsonl, max_rows: 300}}
translation: {enabled: true, mode: orig+en, backend: file, path: en.tsv}
split: {category_depth: 3, train_folds: [0, 2]}
train: {tapt: {aux_task: qi, epochs: 1, lr: 5.0e-5, max_rows: 100}}
resources: {gpu: h100, gpus: 2, launcher: torchrun}
sweep:
  train.lr: [1.0e-4, 3.0e-4]
""",
    "both-prefix": """\
name: both-prefix
task: both
data: {qc: {train: qc.jsonl}, qi: {train: qi.jsonl}}
translation: {enabled: true, backend: apertium}
split: {strategy: stratified, folds: 4, train_folds: [0, 1]}
model: {backbone: xlm-roberta-base, pooling: cls, routing: prefix, train_embeddings: true, lora: {r: 4, alpha: 8}}
train: {tapt: null, weight_decay: 0, max_length: 128, seed: 1}
sweep:
  model.routing: [prefix, heads]
""",
    "holdout-tapt": """\
name: holdout-tapt
data: {qc: {train: qc.jsonl, test: qc_test.jsonl}, qi: {train: qi.jsonl}}
split: {folds: 4, train_folds: all, holdout_fold: 3}
train: {tapt: {aux_task: qi}}
ensemble: {method: vote}
""",
}


def plan_case(name: str, directory: Path) -> Any:
    """The plan of one case, its data files named by fixed paths and hashes so that configs are stable."""
    from relctl_core.spec import expand_runs, load_spec
    from relctl_core.stages import plan_experiment

    for file in DATA_FILES:
        (directory / file).write_text("")
    (directory / f"{name}.yaml").write_text(CASES[name])
    files = {
        str(directory / file): {"path": f"data/{file}", "sha256": hashlib.sha256(file.encode()).hexdigest()}
        for file in DATA_FILES
    }
    return plan_experiment(expand_runs(load_spec(directory / f"{name}.yaml")), files)


def rendered(plan: Any) -> dict[str, Any]:
    """A plan as JSON-ready data: every stage with its key, config and inputs, and every run."""
    return {
        "stages": [
            {
                "key": key,
                "kind": stage.kind,
                "label": stage.label,
                "gpu": stage.gpu,
                "run": stage.run,
                "depends_on": stage.depends_on,
                "config": stage.config,
            }
            for key, stage in plan.stages.items()
        ],
        "runs": [{"name": run.name, "kind": run.kind, "task": run.task, "config": run.config} for run in plan.runs],
    }


def record() -> None:
    with tempfile.TemporaryDirectory() as folder:
        plans = {}
        for name in CASES:
            case_dir = Path(folder) / name
            case_dir.mkdir()
            plans[name] = rendered(plan_case(name, case_dir))
    RECORDED.write_text(json.dumps(plans, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def test_representative_experiments_plan_the_recorded_stages(tmp_path: Path) -> None:
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))
    assert sorted(recorded) == sorted(CASES)
    for name in CASES:
        (tmp_path / name).mkdir()
        planned = rendered(plan_case(name, tmp_path / name))
        # As JSON text, so that key order counts too: the run database stores configs as written.
        for index, (stage, expected) in enumerate(zip(planned["stages"], recorded[name]["stages"], strict=True)):
            assert json.dumps(stage) == json.dumps(expected), f"{name}: stage {index} ({expected['label']})"
        assert json.dumps(planned["runs"]) == json.dumps(recorded[name]["runs"]), name


def test_every_planned_config_reads_back_through_its_payload_unchanged(tmp_path: Path) -> None:
    from relctl_core.payloads import RunSettings
    from relctl_core.stages import PAYLOADS

    kinds = set()
    for name in CASES:
        (tmp_path / name).mkdir()
        plan = plan_case(name, tmp_path / name)
        for stage in plan.stages.values():
            kinds.add(stage.kind)
            read = PAYLOADS[stage.kind].model_validate(stage.config)
            assert json.dumps(read.config()) == json.dumps(stage.config), f"{name}: {stage.label}"
        for run in plan.runs:
            if run.kind == "model":
                settings = {key: value for key, value in run.config.items() if key != "overrides"}
                assert json.dumps(RunSettings.model_validate(settings).config()) == json.dumps(settings)
    assert kinds == set(PAYLOADS), "the cases plan every kind of stage"


def test_an_ensembles_members_are_kept_and_a_runs_evaluation_has_none() -> None:
    from relctl_core.payloads import EvaluatePayload

    ensemble = {"task": "QC", "folds": [0, 1], "combine": "vote", "members": [{"run": 3, "name": "a", "folds": [0, 1]}]}
    assert EvaluatePayload.model_validate(ensemble).config() == ensemble
    assert "members" not in EvaluatePayload(task="QI", folds=[0], combine="mean").config()


def test_a_config_the_payload_does_not_describe_is_refused() -> None:
    from pydantic import ValidationError

    from relctl_core.payloads import SplitPayload

    split = {"task": "QC", "strategy": "random", "folds": 3, "category_depth": 2, "seed": 1}
    assert SplitPayload.model_validate(split).folds == 3
    for wrong in ({"folds": 1}, {"strategy": "grouped"}, {"task": "BOTH"}, {"extra": True}):
        with pytest.raises(ValidationError):
            SplitPayload.model_validate({**split, **wrong})


if __name__ == "__main__":
    record()
    sys.stdout.write(f"recorded {RECORDED}\n")
