"""The training job: everything one fine-tuning run needs, as a typed object that round-trips through JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from relctl_core.errors import InputError


class TrainJob(BaseModel):
    """One LoRA fine-tuning run of a sequence-pair relevance classifier.

    Fields by group:

    - backbone: ``model_path``, ``pooling``, ``init_from``, ``tasks``, ``private_layers``
    - LoRA: ``lora_r``, ``lora_alpha``, ``lora_dropout``, ``target_modules``, ``train_embeddings``
    - optimisation: ``epochs``, ``lr``, ``batch_size``, ``grad_accum``, ``scheduler``, ``warmup_ratio``,
      ``weight_decay``, ``max_steps``, ``precision``, ``seed``
    - resuming: ``checkpoint_steps``
    - ranks: ``processes``, ``launcher``, ``zero_stage``
    - data: ``max_length``, ``train_file``, ``val_file``, ``test_file``
    - results: ``output_dir``
    """

    model_config = ConfigDict(extra="forbid")

    model_path: str = Field(description="Hugging Face model folder (or hub id) of the backbone.")
    pooling: Literal["auto", "cls", "mean", "last"] = Field(
        "auto", description="How token states become one vector; auto: mean for encoders, last for decoders."
    )
    lora_r: int = Field(8, gt=0, description="LoRA rank.")
    lora_alpha: int = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] | None = Field(
        None, min_length=1, description="Modules that get LoRA adapters; None: the attention projections."
    )
    train_embeddings: bool = Field(False, description="Also train the input word embeddings in full.")
    epochs: int = Field(2, gt=0, description="Passes over the training rows.")
    lr: float = Field(1e-4, gt=0.0, description="Peak learning rate of AdamW.")
    batch_size: int = Field(32, gt=0, description="Rows per forward pass.")
    grad_accum: int = Field(1, gt=0, description="Forward passes per optimizer step.")
    scheduler: Literal["linear", "constant"] = Field(
        "linear", description="Learning rate after warmup: linear decay to zero, or constant."
    )
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Share of the steps spent warming up.")
    weight_decay: float = Field(0.01, ge=0.0, description="AdamW weight decay on matrices (not biases).")
    max_length: int = Field(64, ge=4, description="Tokens per (query, target) pair after truncation.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast on a CUDA GPU that supports it, fp32 otherwise."
    )
    seed: int = Field(42, description="Seeds weight init, dropout and the data order.")
    train_file: str = Field(description="JSON lines: id, language, query_text, target_text, label.")
    val_file: str | None = Field(
        None, description="Labelled rows scored every epoch; give out-of-fold probs."
    )
    test_file: str | None = Field(None, description="Unlabelled rows scored once by the final model.")
    output_dir: str = Field(description="Where model/, oof.jsonl, test.jsonl and checkpoints/ go.")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps.")
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
    processes: int = Field(
        1, ge=1, description="Data-parallel ranks, one per GPU; over 1, a launcher starts them (see launch.py)."
    )
    launcher: Literal["torchrun", "deepspeed"] = Field(
        "torchrun", description="What starts the ranks of a job with processes > 1."
    )
    zero_stage: Literal[2, 3] = Field(2, description="DeepSpeed ZeRO stage (launcher deepspeed).")
    checkpoint_steps: int | None = Field(
        None, gt=0, description="Also checkpoint every this many optimizer steps; None: at epoch ends only."
    )


    @model_validator(mode="after")
    def check_private_layers_need_tasks(self) -> TrainJob:
        if self.private_layers and not self.tasks:
            raise ValueError("private_layers needs tasks: layers are private to a task")
        return self


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
