"""Routing heads+private: each task has its own top layers (private LoRA adapters over shared frozen
weights) and its own head; rows go through their task's layers, also in a batch of both tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from relctl_core.errors import InputError

from relctl_trainer.inputs import encode_pairs, pad_batch
from relctl_trainer.modeling import (
    PRIVATE_FILE,
    Placement,
    _backbone_blocks,
    build_relevance_model,
    describe_backbone,
    load_relevance_model,
    load_tokenizer,
    save_relevance_model,
)

CPU = Placement(torch.device("cpu"), None)
QUERIES = ["red shoes", "blue lamp for kids", "green sofa", "black phone cable"]
TARGETS = ["footwear", "toys", "garden and tools", "apparel"]
TASKS = [0, 1, 1, 0]


@pytest.fixture(params=["tiny_backbone", "tiny_decoder"])
def backbone(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(request.param)


def _model(path: str, private_layers: int = 1):
    card = describe_backbone(
        path, pooling="auto", target_modules=None, train_embeddings=False, max_length=16,
        tasks=["QC", "QI"], private_layers=private_layers,
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_relevance_model(card, lora_r=4, lora_alpha=8, lora_dropout=0.0, placement=CPU)
    # LoRA's B matrices start at zero; give every adapter a value so that which one ran shows in the logits.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.5)
    return model.eval(), card


def _batch(path: str) -> dict[str, torch.Tensor]:
    pairs = encode_pairs(load_tokenizer(path), QUERIES, TARGETS, max_length=16)
    pairs = pairs.routed(["QC" if task == 0 else "QI" for task in TASKS], ["QC", "QI"])
    return CPU.tensors(pad_batch(pairs, np.arange(len(QUERIES))))


def _rows(batch: dict[str, torch.Tensor], rows: list[int]) -> dict[str, torch.Tensor]:
    return {name: tensor[rows] for name, tensor in batch.items()}


def test_each_task_has_its_own_top_layers_over_shared_frozen_weights(backbone: str) -> None:
    model, _ = _model(backbone)
    blocks = _backbone_blocks(model.backbone)
    own, private = dict(blocks[-1].named_parameters()), dict(model.private[0][0].named_parameters())
    assert own.keys() == private.keys()
    adapters = [name for name in own if "lora_" in name]
    assert adapters and all(private[name] is not own[name] and private[name].requires_grad for name in adapters)
    assert all(private[name] is own[name] and not own[name].requires_grad for name in own if name not in adapters)
    # The lower layer has no private copy: one trainable set of its adapters only.
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert sum(name.startswith("private.") for name in trainable) == len(adapters)


def test_rows_go_through_their_own_tasks_layers_in_a_mixed_batch(backbone: str) -> None:
    model, _ = _model(backbone)
    batch = _batch(backbone)
    with torch.inference_mode():
        mixed = model(**batch)
        alone = torch.cat([model(**_rows(batch, [row])) for row in range(len(QUERIES))])
        assert mixed.tolist() == pytest.approx(alone.tolist(), abs=1e-5)
        # Changing the second task's private adapters moves its rows only.
        for name, parameter in model.private.named_parameters():
            if "lora_B" in name:
                parameter.add_(1.0)
        moved = model(**batch)
    qc, qi = [0, 3], [1, 2]
    assert moved[qc].tolist() == pytest.approx(mixed[qc].tolist(), abs=1e-6)
    assert all(abs(a - b) > 1e-4 for a, b in zip(moved[qi].tolist(), mixed[qi].tolist(), strict=True))
    # And the swap is undone after each pass: the backbone holds its own layers again.
    assert all(block is not copy for block in _backbone_blocks(model.backbone) for copy in model.private[0])


def test_gradients_reach_only_the_layers_of_the_rows_task(backbone: str) -> None:
    model, _ = _model(backbone)
    model.train()
    batch = _batch(backbone)
    blocks = _backbone_blocks(model.backbone)

    def grads(module: torch.nn.Module) -> float:
        return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.requires_grad and p.grad is not None)

    for rows, private_learns in (([0, 3], False), ([1, 2], True)):
        model.zero_grad(set_to_none=True)
        model(**_rows(batch, rows)).sum().backward()
        assert (grads(model.private) > 0) == private_learns
        assert (grads(blocks[-1]) > 0) == (not private_learns)
        assert grads(blocks[0]) > 0  # the shared layer learns from both tasks


def test_every_task_layers_run_every_tasks_layers_for_nothing_on_the_tasks_a_batch_lacks(backbone: str) -> None:
    # What DeepSpeed's ranks train with: each pass runs the layers of every task, in task order.
    model, _ = _model(backbone)
    model.train()
    for module in model.modules():  # training mode, with nothing drawn at random
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    batch = _batch(backbone)
    ran: list[int] = []
    for index, layers in enumerate([_backbone_blocks(model.backbone)[-1], model.private[0][0]]):
        layers.register_forward_hook(lambda *_, index=index: ran.append(index))

    for rows in ([0, 3], [1, 2], [0, 1, 2, 3]):
        model.every_task_layers = False
        model.zero_grad(set_to_none=True)
        ran.clear()
        plain = model(**_rows(batch, rows))
        plain.sum().backward()
        plain_grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        plain_ran = list(ran)

        model.every_task_layers = True
        model.zero_grad(set_to_none=True)
        ran.clear()
        lockstep = model(**_rows(batch, rows))
        lockstep.sum().backward()
        assert ran == [0, 1] and plain_ran == sorted(set(plain_ran))  # both tasks' layers, QC's first
        assert lockstep.tolist() == pytest.approx(plain.tolist(), abs=1e-6)
        trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
        # Every trainable tensor has a gradient now, and it is the one the plain pass gave, or zero.
        assert all(p.grad is not None for p in trainable.values())
        for name, parameter in trainable.items():
            expected = plain_grads.get(name, torch.zeros_like(parameter))
            torch.testing.assert_close(parameter.grad, expected, rtol=1e-5, atol=1e-6)

    # In scoring too (ZeRO-3's ranks score together), with the same logits.
    model.eval()
    ran.clear()
    with torch.inference_mode():
        scored = model(**_rows(batch, [0, 3]))
    assert ran == [0, 1]
    model.every_task_layers = False
    with torch.inference_mode():
        assert scored.tolist() == pytest.approx(model(**_rows(batch, [0, 3])).tolist(), abs=1e-6)


def test_saved_private_layers_load_back(backbone: str, tmp_path: Path) -> None:
    model, card = _model(backbone)
    batch = _batch(backbone)
    with torch.inference_mode():
        expected = model(**batch).tolist()
    save_relevance_model(model, card, tmp_path / "model")
    assert (tmp_path / "model" / PRIVATE_FILE).exists()
    loaded, loaded_card = load_relevance_model(tmp_path / "model", CPU)
    assert loaded_card.private_layers == 1
    with torch.inference_mode():
        assert loaded(**batch).tolist() == pytest.approx(expected, abs=1e-5)

    (tmp_path / "model" / PRIVATE_FILE).unlink()
    with pytest.raises(InputError, match="private layers"):
        load_relevance_model(tmp_path / "model", CPU)


def test_private_layers_leave_at_least_one_shared_layer(tiny_backbone: str) -> None:
    with pytest.raises(InputError, match="2 layers") as raised:
        describe_backbone(
            tiny_backbone, pooling="auto", target_modules=None, train_embeddings=False, max_length=16,
            tasks=["QC", "QI"], private_layers=2,
        )  # fmt: skip
    assert raised.value.path == "private_layers"
