"""Checkpoints of a training run, every N optimizer steps and at every epoch end: written atomically,
only the latest kept, and resumed from (mid-epoch too)."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from relctl_core.errors import InputError
from torch import nn

STATE_FILE = "state.json"
TRAINABLE_FILE = "trainable.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng.pt"
STEP_PREFIX = "step-"
ENGINE_TAG = "engine"  # DeepSpeed's own checkpoint folder inside a step's


@dataclass(frozen=True)
class Progress:
    """How far a run got: the last complete (validated) epoch, the optimizer steps taken so far, and how
    many of those belong to the epoch after ``epoch`` (0 at an epoch end)."""

    epoch: int
    global_step: int
    epoch_step: int = 0


def save_checkpoint(
    root: Path,
    progress: Progress,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    run_key: dict[str, Any],
    engine: Any = None,
    main: bool = True,
    sync: Callable[[], None] = lambda: None,
) -> Path:
    """Write ``root/step-N`` through a temporary folder and a rename, then drop older checkpoints.

    A process killed at any moment leaves either the previous checkpoint or the new one complete.
    Every rank of a job calls this (``sync`` is their barrier); rank 0 (``main``) writes the files. A
    DeepSpeed ``engine`` saves its sharded weights and optimizer state from every rank into ENGINE_TAG/
    (the adapters and head only: the frozen backbone is not saved).
    """
    from safetensors.torch import save_file

    staging = root / f".{STEP_PREFIX}{progress.global_step}.tmp"
    final = root / f"{STEP_PREFIX}{progress.global_step}"
    if main:
        root.mkdir(parents=True, exist_ok=True)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir()
    sync()
    if engine is not None:
        engine.save_checkpoint(str(staging), tag=ENGINE_TAG, save_latest=False, exclude_frozen_parameters=True)
        sync()
    if not main:
        sync()
        return final
    if engine is None:
        trainable = {
            name: parameter.detach().cpu().contiguous()
            for name, parameter in model.named_parameters()
            if parameter.requires_grad
        }
        save_file(trainable, str(staging / TRAINABLE_FILE))
        torch.save(optimizer.state_dict(), staging / OPTIMIZER_FILE)
    torch.save(scheduler.state_dict(), staging / SCHEDULER_FILE)
    torch.save(_rng_state(), staging / RNG_FILE)
    state = {
        "epoch": progress.epoch,
        "global_step": progress.global_step,
        "epoch_step": progress.epoch_step,
        "run_key": run_key,
        "engine": engine is not None,
    }
    (staging / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.rename(staging, final)
    for entry in root.iterdir():
        if entry == final:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    sync()
    return final


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete checkpoint folder under root, if any (staging folders are ignored)."""
    complete = [
        entry
        for entry in root.glob(f"{STEP_PREFIX}*")
        if entry.name[len(STEP_PREFIX) :].isdigit() and (entry / STATE_FILE).is_file()
    ]
    return max(complete, key=lambda entry: int(entry.name[len(STEP_PREFIX) :]), default=None)


def restore_checkpoint(
    root: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    run_key: dict[str, Any],
    engine: Any = None,
) -> Progress | None:
    """Load the latest checkpoint into model, optimizer, scheduler and the RNGs; None when there is none.

    With a DeepSpeed ``engine`` (every rank calls this then), the engine loads its own shards.

    A checkpoint written by a different job (other data or hyperparameters) is an InputError rather than
    something to resume from or to overwrite silently.
    """
    from safetensors.torch import load_file

    latest = latest_checkpoint(root)
    if latest is None:
        return None
    state = json.loads((latest / STATE_FILE).read_text(encoding="utf-8"))
    saved_key = state["run_key"]
    if saved_key != run_key:
        changed = sorted(_changed_settings(saved_key, run_key))
        raise InputError(
            f"checkpoint was written by a different job (changed: {', '.join(changed)}); "
            "remove it or use another output_dir",
            file=latest / STATE_FILE,
        )
    if engine is not None:
        loaded, _ = engine.load_checkpoint(
            str(latest), tag=ENGINE_TAG, load_module_strict=False, load_lr_scheduler_states=False
        )
        if loaded is None:
            raise InputError("the DeepSpeed engine could not load this checkpoint", file=latest / ENGINE_TAG)
    else:
        trainable = load_file(str(latest / TRAINABLE_FILE))
        expected = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
        if set(trainable) != expected:
            raise InputError("checkpoint does not match the model's trainable parameters", file=latest)
        model.load_state_dict(trainable, strict=False)
        optimizer.load_state_dict(torch.load(latest / OPTIMIZER_FILE, map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(latest / SCHEDULER_FILE, weights_only=True))
    _set_rng_state(torch.load(latest / RNG_FILE, weights_only=True))
    return Progress(epoch=state["epoch"], global_step=state["global_step"], epoch_step=state["epoch_step"])


def _changed_settings(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted names of the settings two run keys disagree on (``train.lr``), nested sections included."""
    changed = []
    for name in saved.keys() | current.keys():
        old, new = saved.get(name), current.get(name)
        if isinstance(old, dict) and isinstance(new, dict):
            changed += _changed_settings(old, new, f"{prefix}{name}.")
        elif old != new:
            changed.append(prefix + name)
    return changed


def _rng_state() -> dict[str, Any]:
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), position, has_gauss, cached_gaussian),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
