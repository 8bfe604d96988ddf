"""Dropout whose mask costs a quarter of torch's on a CPU.

On a CPU, `nn.Dropout` draws one Mersenne-Twister number per element (`bernoulli_`): in a LoRA
training step of a small encoder that is over a third of the time, more than all the matrix products
of the frozen backbone in bf16. `CheapDropout` draws one 64-bit number per four elements instead
(uniform over the whole int64 range but one value) and reads its four 16-bit lanes: each element is
dropped with probability round(p * 65536) / 65536, within 1e-5 of p, independently, and kept ones
are scaled by 1 / (1 - p) as `nn.Dropout` scales them.

The numbers come from torch's own CPU generator, so seeding, and the generator state that
checkpoints save and restore, cover it as they cover `nn.Dropout`. A GPU draws dropout masks in the
kernel at no such cost: `use_cheap_dropout` is for models trained on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

LANES = 4  # 16-bit lanes of a 64-bit draw
LEVELS = 1 << 16
INT64 = torch.iinfo(torch.int64)


def dropout_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """A bool tensor of ``shape``: True (keep) with probability 1 - round(p * 65536) / 65536."""
    count = shape.numel()
    # random_() alone draws [0, 2**63): the top lane's sign bit would always be 0.
    bits = torch.empty((count + LANES - 1) // LANES, dtype=torch.int64).random_(INT64.min, INT64.max)
    threshold = -(LEVELS // 2) + round(p * LEVELS)  # each lane is uniform on [-32768, 32767]
    return (bits.view(torch.int16)[:count] >= threshold).view(shape)


class CheapDropout(nn.Dropout):
    """`nn.Dropout(p)` on CPU tensors, with the mask drawn as `dropout_mask` draws it (a subclass, so
    that what finds a model's dropouts by type, to change their p say, finds these too)."""

    def __init__(self, p: float) -> None:
        super().__init__(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0 or x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, training=True)
        keep = dropout_mask(x.shape, self.p)
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))



def use_cheap_dropout(model: nn.Module) -> int:
    """Replace every `nn.Dropout` in ``model`` by a `CheapDropout` of the same p; returns how many."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                cheap = CheapDropout(child.p)
                cheap.train(child.training)
                setattr(parent, name, cheap)
                replaced += 1
    return replaced
