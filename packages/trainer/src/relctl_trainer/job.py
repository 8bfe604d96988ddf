"""The training job: everything one fine-tuning run needs, as a typed object that round-trips through JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from relctl_core.errors import InputError
from relctl_core.payloads import spec_field
from relctl_core.spec import (
    DEFAULT_LAUNCHER,
    DEFAULT_ZERO_STAGE,
    LoraSpec,
    ModelSpec,
    ResourcesSpec,
    TrainSpec,
)


class TrainJob(BaseModel):
    """One LoRA fine-tuning run of a sequence-pair relevance classifier.

    Its settings are the experiment spec's own sections and fields, so that a setting the spec accepts
    is one the trainer accepts: each bound is declared once, in relctl_core.spec.

    Fields by group:

    - backbone: ``model_path``, ``pooling``, ``train_embeddings``, ``init_from``, ``tasks``, ``private_layers``
    - ``lora``: the spec's model.lora
    - ``train``: the spec's train section: length, optimisation, inputs and numerics, checkpoints
    - ``resources``: the spec's resources: how many data-parallel ranks, and what starts them
    - data: ``train_file``, ``val_file``, ``test_file``
    - results: ``output_dir``
    """

    model_config = ConfigDict(extra="forbid")

    model_path: str = Field(description="Hugging Face model folder (or hub id) of the backbone.")
    pooling: Literal["auto", "cls", "mean", "last"] = spec_field(ModelSpec, "pooling")
    train_embeddings: bool = spec_field(ModelSpec, "train_embeddings")
    lora: LoraSpec = Field(default_factory=LoraSpec, description="The LoRA adapter (model.lora).")
    train: TrainSpec = Field(
        default_factory=TrainSpec,
        description="Optimisation (train); its tapt is unset, since each TAPT stage is a job of its own.",
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="Data-parallel ranks, one per GPU (resources); see launch.py."
    )
    train_file: str = Field(description="JSON lines: id, language, query_text, target_text, label.")
    val_file: str | None = Field(
        None, description="Labelled rows scored every epoch; give out-of-fold probs."
    )
    test_file: str | None = Field(None, description="Unlabelled rows scored once by the final model.")
    output_dir: str = Field(description="Where model/, oof.jsonl, test.jsonl and checkpoints/ go.")
    tasks: list[str] | None = Field(
        None, min_length=2, description="One head per task, in this order; every row names its task (task: both)."
    )
    private_layers: int = Field(
        0,
        ge=0,
        description="With tasks: this many top layers of the backbone are private to each task (routing heads+private).",
    )
    init_from: str | None = Field(
        None, description="A trained model folder whose adapter and head this training starts from (TAPT stage 2)."
    )

    @model_validator(mode="after")
    def check_private_layers_need_tasks(self) -> TrainJob:
        if self.private_layers and not self.tasks:
            raise ValueError("private_layers needs tasks: layers are private to a task")
        return self

    @model_validator(mode="after")
    def check_one_stage(self) -> TrainJob:
        if self.train.tapt is not None:
            raise ValueError("train.tapt must be unset: each stage of TAPT is a job of its own")
        return self

    @property
    def processes(self) -> int:
        """Data-parallel ranks, one per GPU; over 1, a launcher starts them."""
        return self.resources.gpus

    @property
    def launcher(self) -> Literal["torchrun", "deepspeed"]:
        """What starts the ranks of a job with processes > 1."""
        return self.resources.launcher or DEFAULT_LAUNCHER

    @property
    def zero_stage(self) -> Literal[2, 3]:
        """DeepSpeed's ZeRO stage (launcher deepspeed)."""
        return self.resources.zero_stage or DEFAULT_ZERO_STAGE


def load_job(path: str | Path) -> TrainJob:
    """Read a job file, reporting a bad one as an InputError that names the file and the field."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("job file not found", file=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    try:
        return TrainJob.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InputError(first["msg"], file=path, path=field) from None
