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
    assert (job.pooling, job.lora_r, job.lora_alpha, job.epochs, job.scheduler, job.precision) == (
        "auto",
        8,
        16,
        2,
        "linear",
        "auto",
    )
    assert job.val_file is None and job.max_steps is None and job.target_modules is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"lora_rank": 4}, "lora_rank"), ({"lora_r": 0}, "lora_r"), ({"pooling": "max"}, "pooling")],
)
def test_a_bad_field_is_named(tmp_path: Path, fields: dict, field: str) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({**MINIMAL, **fields}))
    with pytest.raises(InputError) as raised:
        load_job(job_file)
    assert (raised.value.file, raised.value.path) == (str(job_file), field)


def test_a_broken_or_missing_job_file_is_named(tmp_path: Path) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text('{\n"model_path": "m",\n,}')
    with pytest.raises(InputError) as raised:
        load_job(job_file)
    assert raised.value.line == 3
    with pytest.raises(InputError, match="not found"):
        load_job(tmp_path / "absent.json")
