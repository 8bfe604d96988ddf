"""Job files: valid ones load, bad ones are InputErrors naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from relctl_core.errors import InputError

from relctl_trainer.job import TrainJob, load_job

MINIMAL = {"model_path": "models/e5", "train_file": "train.jsonl", "output_dir": "out"}


def test_a_minimal_job_gets_the_documented_defaults(tmp_path: Path) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(MINIMAL))
    job = load_job(job_file)
    assert job == TrainJob(**MINIMAL)
    assert (job.pooling, job.lora.r, job.lora.alpha, job.train.epochs, job.train.scheduler, job.train.precision) == (
        "auto",
        8,
        16,
        2,
        "linear",
        "auto",
    )
    assert job.val_file is None and job.train.max_steps is None and job.lora.target_modules is None
    # Unset launch settings mean what the spec says they mean.
    assert (job.processes, job.launcher, job.zero_stage) == (1, "torchrun", 2)


def test_a_job_round_trips_through_its_json_file(tmp_path: Path) -> None:
    job = TrainJob(
        **MINIMAL,
        lora={"r": 4, "target_modules": ["query"]},
        train={"warmup_ratio": 0.5, "checkpoint_steps": None},
        resources={"gpu": "a100", "gpus": 2, "launcher": "deepspeed", "zero_stage": 3},
    )
    job_file = tmp_path / "job.json"
    job_file.write_text(job.model_dump_json())
    assert load_job(job_file) == job
    assert (job.processes, job.launcher, job.zero_stage) == (2, "deepspeed", 3)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"lora_rank": 4}, "lora_rank"),
        ({"lora": {"r": 0}}, "lora.r"),
        ({"pooling": "max"}, "pooling"),
        # Bounds of the spec's own sections: a job the spec would refuse is refused too.
        ({"train": {"warmup_ratio": 1}}, "train.warmup_ratio"),
        ({"lora": {"target_modules": []}}, "lora.target_modules"),
        ({"resources": {"gpus": 2}}, "resources.gpus"),
    ],
)
def test_a_bad_field_is_named(tmp_path: Path, fields: dict, field: str) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({**MINIMAL, **fields}))
    with pytest.raises(InputError) as raised:
        load_job(job_file)
    assert (raised.value.file, raised.value.path) == (str(job_file), field)


def test_a_job_is_one_stage_of_training(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="train.tapt must be unset"):
        TrainJob(**MINIMAL, train={"tapt": {"aux_task": "qi"}})


def test_a_broken_or_missing_job_file_is_named(tmp_path: Path) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text('{\n"model_path": "m",\n,}')
    with pytest.raises(InputError) as raised:
        load_job(job_file)
    assert raised.value.line == 3
    with pytest.raises(InputError, match="not found"):
        load_job(tmp_path / "absent.json")
