"""Where a training's updates happen: one process, data-parallel ranks (DistributedDataParallel), or
DeepSpeed's engine (ZeRO-2 or 3) across ranks. The training loop talks to all three through ``Updates``,
for its passes, its steps, its scoring and the weights it saves."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from relctl_trainer.inputs import EncodedPairs
from relctl_trainer.job import TrainJob
from relctl_trainer.launch import MAX_GRAD_NORM, deepspeed_config, write_deepspeed_config
from relctl_trainer.modeling import Placement, RelevanceModel, score_pairs


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel job (the launcher's environment); one rank without one."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Ranks:
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def join_process_group(ranks: Ranks) -> None:
    if torch.cuda.is_available():
        torch.cuda.set_device(ranks.local_rank)
    torch.distributed.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")


def sum_over_ranks(value: float, ranks: Ranks) -> float:
    if ranks.world == 1:
        return value
    total = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(total)
    return float(total.item())


def barrier(ranks: Ranks) -> None:
    if ranks.world > 1:
        torch.distributed.barrier()


class Updates:
    """One process, or DistributedDataParallel across ranks: the loop's backward passes, optimizer steps
    and weights.

    ``module`` is what runs the forward pass. ``step`` clips the gradients, updates the weights, moves
    the schedule on and clears the gradients. ``score`` and ``full_weights`` are called by every rank:
    ``score`` gives rank 0 the logits of all pairs (the other ranks None); inside ``full_weights``, the
    model holds all its weights (they are never sharded here). ``engine`` is DeepSpeed's, if any.
    """

    engine: Any = None

    def __init__(self, model: RelevanceModel, optimizer: torch.optim.Optimizer, scheduler: Any, ranks: Ranks, placement: Placement) -> None:
        self.model, self.ranks, self.placement = model, ranks, placement
        self.optimizer, self.scheduler = optimizer, scheduler
        self.trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
        self.module: nn.Module = model
        if ranks.world > 1:
            device_ids = [placement.device.index] if placement.device.type == "cuda" else None
            # A batch of one task leaves the other tasks' private layers without gradients.
            self.module = nn.parallel.DistributedDataParallel(
                model, device_ids=device_ids, find_unused_parameters=model.private is not None
            )

    def backward(self, loss: torch.Tensor, *, last: bool) -> None:
        loss.backward()

    def step(self) -> None:
        torch.nn.utils.clip_grad_norm_(self.trainable, MAX_GRAD_NORM)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def score(self, pairs: EncodedPairs, *, batch_size: int) -> np.ndarray | None:
        """Rank 0 scores alone, with the whole model in hand."""
        if not self.ranks.main:
            return None
        return score_pairs(self.model, pairs, self.placement, batch_size=batch_size)

    def full_weights(self) -> AbstractContextManager[Any]:
        return nullcontext()


class DeepSpeedUpdates(Updates):
    """DeepSpeed's engine across ranks: ZeRO-2 shards the optimizer state and gradients, ZeRO-3 the
    weights too. The loop keeps its own batches, loss weights and schedule; the engine reduces, clips
    and updates at the step boundary the loop names.

    Under ZeRO-3, every forward pass gathers each layer's weights from all ranks as it runs, so all
    ranks score together, each its share of the batches, and rank 0 collects the logits; and
    ``full_weights`` gathers every weight on every rank (all ranks must enter it), so that rank 0 can
    save the model as a one-process run does. It is not for scoring: DeepSpeed gives a layer's weights
    back at the end of a pass without autograd, also inside it.
    """

    def __init__(
        self, model: RelevanceModel, optimizer: torch.optim.Optimizer, scheduler: Any, job: TrainJob, ranks: Ranks, placement: Placement
    ) -> None:
        import deepspeed

        self.model, self.ranks, self.placement = model, ranks, placement
        bf16 = placement.autocast_dtype is not None
        hidden_size = model.head.in_features
        if ranks.main:  # what the engine ran with, beside the job, for whoever reads the outputs
            write_deepspeed_config(job, Path(job.output_dir), bf16=bf16, hidden_size=hidden_size)
        # ZeRO follows the layers a pass runs in lockstep across ranks, so each pass runs every task's.
        model.every_task_layers = True
        config = deepspeed_config(job, bf16=bf16, hidden_size=hidden_size)
        self.engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
        self.module = self.engine
        self.scheduler = scheduler
        self.zero_stage = job.zero_stage

    def backward(self, loss: torch.Tensor, *, last: bool) -> None:
        # A step's passes vary in number (a short last group), so the loop names the boundary itself;
        # the loss already carries its weight in the step, hence no scaling by the accumulation steps.
        self.engine.set_gradient_accumulation_boundary(last)
        self.engine.backward(loss, scale_wrt_gas=False)

    def step(self) -> None:
        self.engine.step()
        self.scheduler.step()

    def score(self, pairs: EncodedPairs, *, batch_size: int) -> np.ndarray | None:
        if self.zero_stage < 3:
            return super().score(pairs, batch_size=batch_size)
        mine = score_pairs(
            self.model, pairs, self.placement, batch_size=batch_size, rank=self.ranks.rank, world=self.ranks.world
        )
        shares: list[Any] = [None] * self.ranks.world
        torch.distributed.all_gather_object(shares, mine)
        if not self.ranks.main:
            return None
        logits = shares[0]
        for share in shares[1:]:
            scored = ~np.isnan(share)
            logits[scored] = share[scored]
        return logits

    def full_weights(self) -> AbstractContextManager[Any]:
        if self.zero_stage < 3:
            return nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(self.engine.module.parameters()), modifier_rank=None)


def make_updates(
    model: RelevanceModel, optimizer: torch.optim.Optimizer, scheduler: Any, *, job: TrainJob, ranks: Ranks, placement: Placement
) -> Updates:
    if ranks.world > 1 and job.launcher == "deepspeed":
        return DeepSpeedUpdates(model, optimizer, scheduler, job, ranks, placement)
    return Updates(model, optimizer, scheduler, ranks, placement)
