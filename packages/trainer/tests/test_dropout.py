"""CheapDropout: the same distribution as nn.Dropout (independent drops at rate p, kept values scaled by
1 / (1 - p)), drawn from torch's generator, and swapped in for every nn.Dropout of a model on a CPU;
and the CPU placement that picks bf16 where the CPU multiplies it natively."""

from __future__ import annotations

import math

import pytest
import torch
from relctl_core.errors import InputError
from torch import nn

from relctl_trainer import modeling
from relctl_trainer.dropout import CheapDropout, dropout_mask, use_cheap_dropout


@pytest.mark.parametrize("p", [0.1, 0.35, 0.9])
def test_each_element_is_kept_with_probability_one_minus_p_independently(p: float) -> None:
    torch.manual_seed(0)
    count = 1_000_003  # not a multiple of the four lanes of a draw
    keep = dropout_mask(torch.Size([count]), p).double()
    assert keep.shape == (count,)
    sigma = math.sqrt(p * (1 - p) / count)
    assert abs(keep.mean().item() - (1 - p)) < 5 * sigma
    # Every lane of a draw on its own, and neighbours (in one draw and across two) together.
    lanes = keep[: count // 4 * 4].view(-1, 4)
    lane_sigma = math.sqrt(p * (1 - p) / lanes.shape[0])
    for lane in range(4):
        assert abs(lanes[:, lane].mean().item() - (1 - p)) < 5 * lane_sigma, lane
    pair_sigma = math.sqrt((1 - p) ** 2 * (1 - (1 - p) ** 2) / (count - 1))
    for shift in (1, 3, 4, 5):
        both = (keep[:-shift] * keep[shift:]).mean().item()
        assert abs(both - (1 - p) ** 2) < 6 * pair_sigma, shift


def test_kept_values_are_scaled_dropped_ones_are_zero_and_gradients_follow_the_mask() -> None:
    torch.manual_seed(1)
    layer = CheapDropout(0.25)
    x = torch.randn(64, 33, requires_grad=True)
    y = layer(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75)
    assert 0.6 < kept.double().mean().item() < 0.9
    y.sum().backward()
    assert x.grad is not None and torch.allclose(x.grad, kept.double().float() / 0.75)
    # bf16 activations (under autocast) stay bf16.
    assert layer(torch.randn(8, 8, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_eval_mode_zero_and_one_behave_as_nn_dropout() -> None:
    x = torch.randn(10, 10)
    layer = CheapDropout(0.5).eval()
    assert layer(x) is x
    assert CheapDropout(0.0)(x) is x
    assert torch.equal(CheapDropout(1.0)(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match="between 0 and 1"):
        CheapDropout(1.5)


def test_masks_follow_torch_seed_and_generator_state() -> None:
    """Checkpoints save torch's generator state: restoring it draws the same masks again."""
    torch.manual_seed(7)
    first = dropout_mask(torch.Size([5000]), 0.1)
    state = torch.get_rng_state()
    second = dropout_mask(torch.Size([5000]), 0.1)
    torch.manual_seed(7)
    assert torch.equal(dropout_mask(torch.Size([5000]), 0.1), first)
    torch.set_rng_state(state)
    assert torch.equal(dropout_mask(torch.Size([5000]), 0.1), second)
    assert not torch.equal(first, second)


def test_every_dropout_of_a_model_is_replaced_with_its_p() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2), nn.ModuleDict({"default": nn.Dropout(0.3), "none": nn.Identity()}))
    model.eval()
    assert use_cheap_dropout(model) == 2
    assert isinstance(model[1], CheapDropout) and model[1].p == 0.2 and not model[1].training
    assert isinstance(model[2]["default"], CheapDropout) and model[2]["default"].p == 0.3
    assert isinstance(model[2]["none"], nn.Identity)
    assert not any(type(module) is nn.Dropout for module in model.modules())


def test_a_cpu_with_native_bf16_trains_in_bf16_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(modeling, "cpu_has_bf16", lambda: True)
    assert modeling.choose_placement("auto").precision == "bf16"
    assert modeling.choose_placement("bf16").autocast_dtype == torch.bfloat16
    assert modeling.choose_placement("fp32").precision == "fp32"
    monkeypatch.setattr(modeling, "cpu_has_bf16", lambda: False)
    assert modeling.choose_placement("auto").precision == "fp32"
    with pytest.raises(InputError, match="AVX-512 BF16 or AMX") as refused:
        modeling.choose_placement("bf16")
    assert refused.value.path == "train.precision"


def test_the_relevance_model_on_a_cpu_has_no_nn_dropout_left(tiny_backbone: str) -> None:
    card = modeling.describe_backbone(tiny_backbone, pooling="mean", target_modules=["query", "value"], train_embeddings=False, max_length=16)
    model = modeling.build_relevance_model(card, lora_r=4, lora_alpha=8, lora_dropout=0.1, placement=modeling.choose_placement("fp32"))
    cheap = [m for m in model.modules() if isinstance(m, CheapDropout)]
    assert cheap and not any(type(module) is nn.Dropout for module in model.modules())
    assert {m.p for m in cheap} == {0.1}
