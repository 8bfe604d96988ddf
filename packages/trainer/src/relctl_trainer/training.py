"""LoRA fine-tuning of a relevance classifier: the epoch loop, validation, checkpoints and the run's outputs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from relctl_trainer.checkpoints import Progress, restore_checkpoint, save_checkpoint
from relctl_trainer.inputs import (
    EncodedPairs,
    PairRow,
    encode_pairs,
    length_grouped_batches,
    pad_batch,
    read_rows,
)
from relctl_trainer.job import TrainJob
from relctl_trainer.metrics import sigmoid, validation_metrics
from relctl_trainer.modeling import (
    ModelCard,
    Placement,
    RelevanceModel,
    build_relevance_model,
    choose_placement,
    continue_from,
    describe_backbone,
    load_tokenizer,
    save_relevance_model,
)
from relctl_trainer.parallel import Ranks, Updates, barrier, join_process_group, make_updates, sum_over_ranks

Emit = Callable[[dict[str, Any]], None]

# Step events at most this often (plus the first step and the last step of every epoch).
STEP_EVENT_SECONDS = 1.0
# Scoring keeps no activations for backward, so it affords larger batches than training.
SCORING_BATCH_FACTOR = 2
# Narrower models train faster on one thread: splitting their small matrix products costs more in
# synchronisation than it saves (measured on 2 cores: hidden 32 runs 25 % slower on two threads, and
# over 10x slower when another process competes for the cores; hidden 384 runs 25 % faster on two).
PARALLEL_HIDDEN_SIZE = 256
# Job fields that may change between a run and its resumption without invalidating the checkpoint.
RESUMABLE_CHANGES = {
    "output_dir": True, "train_file": True, "val_file": True, "test_file": True,
    "train": {"epochs", "max_steps", "checkpoint_steps", "time_limit"},
}


# Set (by the child's SIGTERM handler) when the training should checkpoint at its next step and stop.
STOP_REQUESTED = threading.Event()


class Interrupted(Exception):
    """The training stopped at a step boundary on request, after checkpointing there."""

    def __init__(self, step: int, checkpoint: str | None) -> None:
        self.step = step
        self.checkpoint = checkpoint
        super().__init__(f"stopped at step {step}" + (f", checkpoint {checkpoint}" if checkpoint else ""))


def train(job: TrainJob, emit: Emit) -> dict[str, Any]:
    """Fine-tune, validate and checkpoint every epoch (and every ``checkpoint_steps`` steps), then write
    model/, oof.jsonl and test.jsonl.

    Resumes from the latest checkpoint in ``output_dir`` when there is one, mid-epoch too. Returns the
    paths of the outputs, the last validation metrics (None without validation rows), the number of
    complete epochs behind the final model, the step it resumed from, the optimizer steps this call
    took and the seconds it took.
    """
    # torch's thread count is process-wide: an in-process caller gets its own back.
    threads = torch.get_num_threads()
    ranks = Ranks.from_env()
    if ranks.world > 1:
        join_process_group(ranks)
    try:
        return _train(job, emit if ranks.main else _silent, ranks)
    finally:
        torch.set_num_threads(threads)
        if ranks.world > 1:
            torch.distributed.destroy_process_group()


def _silent(event: dict[str, Any]) -> None:
    """Ranks other than 0 report nothing: rank 0 speaks for the job."""


def _train(job: TrainJob, emit: Emit, ranks: Ranks) -> dict[str, Any]:
    started = time.monotonic()
    output_dir = Path(job.output_dir)
    train_rows = read_rows(job.train_file, labelled=True)
    val_rows = read_rows(job.val_file, labelled=True) if job.val_file else []
    test_rows = read_rows(job.test_file, labelled=False) if job.test_file else []
    output_dir.mkdir(parents=True, exist_ok=True)
    if ranks.main:
        _write_text_atomically(output_dir / "job.json", job.model_dump_json(indent=2) + "\n")

    placement = choose_placement(
        job.train.precision, device_index=ranks.local_rank, cpu_bf16=ranks.world == 1 or job.launcher != "deepspeed"
    )
    card = describe_backbone(
        job.model_path,
        pooling=job.pooling,
        target_modules=job.lora.target_modules,
        train_embeddings=job.train_embeddings,
        max_length=job.train.max_length,
        tasks=job.tasks,
        private_layers=job.private_layers,
    )
    card = dataclasses.replace(card, base_weights=str(placement.weights_dtype).removeprefix("torch."))
    if placement.device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, _cpu_threads(card.hidden_size) // ranks.world))
    _seed_everything(job.train.seed)
    tokenizer = load_tokenizer(card.base_model_path)
    model = build_relevance_model(
        card, lora_r=job.lora.r, lora_alpha=job.lora.alpha, lora_dropout=job.lora.dropout, placement=placement
    )
    if job.init_from:
        continue_from(model, card, Path(job.init_from))
    train_pairs = _encode(tokenizer, train_rows, job.train.max_length, job.tasks)
    train_labels = np.array([row.label for row in train_rows], dtype=np.float32)

    # One optimizer step takes grad_accum batches on every rank: the same rows per step as one process
    # with grad_accum x world batches, so the schedule and the result do not depend on the GPU count.
    steps_per_epoch = math.ceil(math.ceil(len(train_rows) / job.train.batch_size) / (job.train.grad_accum * ranks.world))
    total_steps = job.train.epochs * steps_per_epoch
    if job.train.max_steps is not None:
        total_steps = min(total_steps, job.train.max_steps)
    optimizer = torch.optim.AdamW(_parameter_groups(model, job.train.weight_decay), lr=job.train.lr)
    scheduler = _lr_scheduler(optimizer, job, total_steps)
    updates = make_updates(model, optimizer, scheduler, job=job, ranks=ranks, placement=placement)
    run_key = _run_key(job)
    checkpoints_dir = output_dir / "checkpoints"
    resumed = restore_checkpoint(
        checkpoints_dir, model=model, optimizer=optimizer, scheduler=scheduler, run_key=run_key, engine=updates.engine
    )
    progress = resumed or Progress(epoch=0, global_step=0)
    if ranks.world > 1:
        # Every rank built the same model from the same seed; from here on each draws its own dropout.
        torch.manual_seed(job.train.seed * 1_000_003 + ranks.rank * 10_007 + progress.global_step)
    emit(
        {
            "event": "start",
            "total_steps": total_steps,
            "epochs": job.train.epochs,
            "train_rows": len(train_rows),
            # ZeRO-3 leaves each rank a shard of every weight; ds_numel is the whole weight's size.
            "trainable_parameters": sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters() if p.requires_grad),
            "device": placement.device.type,
            "precision": placement.precision,
            "resumed_from_epoch": resumed.epoch if resumed else None,
            "resumed_from_step": resumed.global_step if resumed else None,
            "initialised_from": job.init_from,
        }
    )

    val_pairs = _encode(tokenizer, val_rows, job.train.max_length, job.tasks) if val_rows else None
    val_labels = np.array([row.label for row in val_rows], dtype=np.float64)
    scoring_batch = job.train.batch_size * SCORING_BATCH_FACTOR
    val_logits: np.ndarray | None = None
    validated = False  # the same on every rank, unlike val_logits (rank 0's alone)
    metrics: dict[str, float | None] | None = None
    steps = _StepEvents(emit, total_steps)

    def checkpoint(reached: Progress, epoch: int) -> Path:
        saved = save_checkpoint(
            checkpoints_dir,
            reached,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            run_key=run_key,
            engine=updates.engine,
            main=ranks.main,
            sync=lambda: barrier(ranks),
        )
        emit(
            {
                "event": "checkpoint",
                "epoch": epoch,
                "step": reached.global_step,
                "epoch_end": reached.epoch_step == 0,
                "path": str(saved),
            }
        )
        return saved

    first_step = progress.global_step
    for epoch in range(progress.epoch + 1, job.train.epochs + 1):
        if progress.global_step >= total_steps and progress.epoch_step == 0:
            break
        epoch_started = time.monotonic()
        global_step = _train_epoch(
            updates,
            scheduler,
            train_pairs,
            train_labels,
            job=job,
            epoch=epoch,
            start=progress,
            total_steps=total_steps,
            placement=placement,
            steps=steps,
            checkpoint=lambda reached, epoch=epoch: checkpoint(reached, epoch),
            ranks=ranks,
        )
        progress = Progress(epoch=epoch, global_step=global_step)
        if val_pairs is not None:
            val_logits = updates.score(val_pairs, batch_size=scoring_batch)  # every rank scores; rank 0 gets all
            validated = True
            if val_logits is not None:
                metrics = validation_metrics(val_labels, val_logits)
        emit({"event": "epoch", "epoch": epoch, "val": metrics, "seconds": time.monotonic() - epoch_started})
        checkpoint(progress, epoch)

    model_dir = output_dir / "model"
    oof_file = test_file = None
    if val_pairs is not None and not validated:
        # Resumed after the last epoch had finished: nothing left to train, but the outputs are due.
        val_logits = updates.score(val_pairs, batch_size=scoring_batch)
        if val_logits is not None:
            metrics = validation_metrics(val_labels, val_logits)
    test_logits = None
    if test_rows:
        test_pairs = _encode(tokenizer, test_rows, job.train.max_length, job.tasks)
        test_logits = updates.score(test_pairs, batch_size=scoring_batch)
    # Under ZeRO-3 every rank takes part in gathering the weights that rank 0 saves.
    with updates.full_weights():
        if ranks.main:
            _save_model_atomically(model, card, model_dir)
    if ranks.main:
        if val_logits is not None:
            oof_file = _write_predictions(output_dir / "oof.jsonl", val_rows, val_logits, with_label=True)
        if test_logits is not None:
            test_file = _write_predictions(output_dir / "test.jsonl", test_rows, test_logits, with_label=False)
    if not ranks.main:
        return {"rank": ranks.rank, "steps_run": progress.global_step - first_step}
    return {
        "oof_file": str(oof_file) if oof_file else None,
        "test_file": str(test_file) if test_file else None,
        "adapter_dir": str(model_dir),
        "metrics": metrics,
        "epochs_run": progress.epoch,
        "resumed_from_step": resumed.global_step if resumed else None,
        "steps_run": progress.global_step - first_step,
        "seconds": time.monotonic() - started,
    }


class _StepEvents:
    """Emits step events sparsely, with the mean training loss since the previous one."""

    def __init__(self, emit: Emit, total_steps: int) -> None:
        self.emit = emit
        self.total_steps = total_steps
        self.losses: list[float] = []
        self.last_emitted: float | None = None

    def record(self, *, epoch: int, step: int, loss: float, lr: float, epoch_ends: bool) -> None:
        self.losses.append(loss)
        now = time.monotonic()
        due = self.last_emitted is None or now - self.last_emitted >= STEP_EVENT_SECONDS
        if due or epoch_ends or step == self.total_steps:
            self.emit(
                {
                    "event": "step",
                    "epoch": epoch,
                    "step": step,
                    "total_steps": self.total_steps,
                    "loss": float(np.mean(self.losses)),
                    "lr": lr,
                }
            )
            self.losses.clear()
            self.last_emitted = now


def _train_epoch(
    updates: Updates,
    scheduler: Any,
    pairs: EncodedPairs,
    labels: np.ndarray,
    *,
    job: TrainJob,
    epoch: int,
    start: Progress,
    total_steps: int,
    placement: Placement,
    steps: _StepEvents,
    checkpoint: Callable[[Progress], Path],
    ranks: Ranks,
) -> int:
    """One pass over the training rows; returns the global optimizer step reached.

    Resuming into this epoch (``start.epoch == epoch - 1`` with ``start.epoch_step`` steps done) skips
    the groups already trained. Every ``job.train.checkpoint_steps`` steps inside the epoch, ``checkpoint``
    gets the progress so far; the caller checkpoints the epoch's end itself, after validation.
    """
    model = updates.module
    model.train()
    # The batch order depends only on (seed, epoch), so a resumed run sees the batches it would have seen.
    # Layers private to a task run once per task in a batch: batches of one task each run them once.
    groups = pairs.task_ids if job.private_layers else None
    batches = length_grouped_batches(
        pairs.lengths, job.train.batch_size, np.random.default_rng([job.train.seed, epoch]), groups=groups
    )
    per_step = job.train.grad_accum * ranks.world
    groups = [batches[i : i + per_step] for i in range(0, len(batches), per_step)]
    done_in_epoch = start.epoch_step if start.epoch == epoch - 1 else 0
    step = start.global_step
    for group_index, group in enumerate(groups[done_in_epoch:], start=done_in_epoch):
        if step >= total_steps:
            break
        # Each row weighs the same in a step, also in a short last group of the epoch. Ranks average
        # their gradients, hence the factor world. Every rank makes as many passes as the busiest one:
        # DistributedDataParallel exchanges gradients at each backward, so a rank that a short last
        # group leaves with fewer batches makes up the difference with passes weighted 0.
        group_rows = sum(len(batch) for batch in group)
        mine = group[ranks.rank :: ranks.world]
        passes = [(batch, 1.0) for batch in mine] + [(group[0], 0.0)] * (math.ceil(len(group) / ranks.world) - len(mine))
        group_loss = 0.0
        for index, (batch, share) in enumerate(passes):
            with placement.autocast():
                logits = model(**placement.tensors(pad_batch(pairs, batch)))
            targets = torch.from_numpy(labels[batch]).to(placement.device)
            loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), targets, reduction="sum")
            updates.backward(loss * (share * ranks.world / group_rows), last=index == len(passes) - 1)
            group_loss += loss.item() * share
        group_loss = sum_over_ranks(group_loss, ranks)
        updates.step()
        step += 1
        epoch_ends = group_index == len(groups) - 1
        steps.record(
            epoch=epoch,
            step=step,
            loss=group_loss / group_rows,
            lr=scheduler.get_last_lr()[0],
            epoch_ends=epoch_ends,
        )
        reached = Progress(epoch=epoch - 1, global_step=step, epoch_step=group_index + 1)
        if _stop_requested(ranks) and step < total_steps:
            # Every rank agreed to stop at this step (one all-reduce), so all take part in the checkpoint.
            raise Interrupted(step, str(checkpoint(reached)))
        if job.train.checkpoint_steps and step % job.train.checkpoint_steps == 0 and not epoch_ends and step < total_steps:
            checkpoint(reached)
    return step


def _stop_requested(ranks: Ranks) -> bool:
    """Whether any rank was asked to stop: ranks may get the signal a step apart, and must stop at the same one."""
    return sum_over_ranks(1.0 if STOP_REQUESTED.is_set() else 0.0, ranks) > 0


def _encode(tokenizer: Any, rows: Sequence[PairRow], max_length: int, tasks: list[str] | None) -> EncodedPairs:
    pairs = encode_pairs(
        tokenizer, [row.query_text for row in rows], [row.target_text for row in rows], max_length
    )
    return pairs.routed([row.task for row in rows], tasks) if tasks else pairs


def _cpu_threads(hidden_size: int) -> int:
    """All usable cores, except for narrow models whose matrix products are too small to split."""
    if hidden_size < PARALLEL_HIDDEN_SIZE:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices (LoRA, head, embeddings) but not on biases or norms."""
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    return [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]


def _lr_scheduler(optimizer: torch.optim.Optimizer, job: TrainJob, total_steps: int) -> Any:
    from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

    warmup_steps = round(job.train.warmup_ratio * total_steps)
    if job.train.scheduler == "linear":
        return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    return get_constant_schedule_with_warmup(optimizer, warmup_steps)


def _run_key(job: TrainJob) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed: the hyperparameters and the training rows' content."""
    key = job.model_dump(exclude=RESUMABLE_CHANGES)
    key["train_sha256"] = hashlib.sha256(Path(job.train_file).read_bytes()).hexdigest()
    return key


def _write_predictions(path: Path, rows: Sequence[PairRow], logits: np.ndarray, *, with_label: bool) -> Path:
    lines: Iterable[str] = (
        json.dumps(
            {
                "id": row.id,
                "language": row.language,
                **({"task": row.task} if row.task else {}),
                **({"label": row.label} if with_label else {}),
                "prob": float(prob),
            }
        )
        for row, prob in zip(rows, sigmoid(logits), strict=True)
    )
    _write_text_atomically(path, "".join(line + "\n" for line in lines))
    return path


def _write_text_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def _save_model_atomically(model: RelevanceModel, card: ModelCard, model_dir: Path) -> None:
    staging = model_dir.with_name(f".{model_dir.name}.tmp")
    if staging.exists():
        shutil.rmtree(staging)
    save_relevance_model(model, card, staging)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    os.rename(staging, model_dir)
