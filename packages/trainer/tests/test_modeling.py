"""Pooling, backbone description and the LoRA classifier built on the tiny random BERT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from relctl_core.errors import InputError

from relctl_trainer.inputs import encode_pairs, pad_batch
from relctl_trainer.modeling import (
    Placement,
    build_relevance_model,
    describe_backbone,
    load_tokenizer,
    pool_tokens,
)

CPU = Placement(torch.device("cpu"), None)


def _hidden() -> torch.Tensor:
    # Token t of sequence b holds the value 10 * b + t in every dimension.
    return (10 * torch.arange(2).view(2, 1, 1) + torch.arange(4).view(1, 4, 1)).float().expand(2, 4, 3)


def test_pooling_with_right_padding() -> None:
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert pool_tokens(_hidden(), mask, "cls")[:, 0].tolist() == [0.0, 10.0]
    assert pool_tokens(_hidden(), mask, "mean")[:, 0].tolist() == [1.0, 10.5]
    assert pool_tokens(_hidden(), mask, "last")[:, 0].tolist() == [2.0, 11.0]


def test_pooling_with_left_padding() -> None:
    mask = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    assert pool_tokens(_hidden(), mask, "cls")[:, 0].tolist() == [1.0, 12.0]
    assert pool_tokens(_hidden(), mask, "mean")[:, 0].tolist() == [2.0, 12.5]
    assert pool_tokens(_hidden(), mask, "last")[:, 0].tolist() == [3.0, 13.0]


def test_describe_backbone_resolves_auto_choices_for_an_encoder(tiny_backbone: str) -> None:
    card = describe_backbone(
        tiny_backbone, pooling="auto", target_modules=None, train_embeddings=False, max_length=32
    )
    assert (card.architecture, card.pooling, card.hidden_size) == ("encoder", "mean", 32)
    assert card.target_modules == ["query", "key", "value", "dense"]
    explicit = describe_backbone(
        tiny_backbone, pooling="cls", target_modules=["key"], train_embeddings=False, max_length=32
    )
    assert (explicit.pooling, explicit.target_modules) == ("cls", ["key"])


def test_describe_backbone_reports_a_missing_model(tmp_path) -> None:
    with pytest.raises(InputError) as raised:
        describe_backbone(
            str(tmp_path / "nowhere"),
            pooling="auto",
            target_modules=None,
            train_embeddings=False,
            max_length=8,
        )
    assert raised.value.path == "model_path"


def test_lora_model_trains_only_adapters_and_head(tiny_backbone: str) -> None:
    card = describe_backbone(
        tiny_backbone, pooling="auto", target_modules=None, train_embeddings=False, max_length=32
    )
    model = build_relevance_model(card, lora_r=4, lora_alpha=8, lora_dropout=0.0, placement=CPU)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert trainable and all("lora_" in name or name.startswith("head.") for name in trainable)
    assert any(".query.lora_A" in name for name in trainable) and any(
        ".value.lora_B" in name for name in trainable
    )
    logits = model(torch.tensor([[2, 5, 3, 0]]), torch.tensor([[1, 1, 1, 0]]))
    assert logits.shape == (1,)


def test_train_embeddings_makes_the_word_embeddings_trainable(tiny_backbone: str) -> None:
    card = describe_backbone(
        tiny_backbone, pooling="auto", target_modules=None, train_embeddings=True, max_length=32
    )
    model = build_relevance_model(card, lora_r=4, lora_alpha=8, lora_dropout=0.0, placement=CPU)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert any("word_embeddings" in name for name in trainable)


def test_unknown_target_modules_are_an_input_error(tiny_backbone: str) -> None:
    card = describe_backbone(
        tiny_backbone, pooling="auto", target_modules=["q_proj"], train_embeddings=False, max_length=32
    )
    with pytest.raises(InputError) as raised:
        build_relevance_model(card, lora_r=4, lora_alpha=8, lora_dropout=0.0, placement=CPU)
    assert raised.value.path == "model.lora.target_modules"


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_a_decoder_pools_its_last_real_token_whatever_the_padding(
    tiny_decoder: str, padding_side: str
) -> None:
    card = describe_backbone(
        tiny_decoder, pooling="auto", target_modules=None, train_embeddings=False, max_length=16
    )
    assert (card.architecture, card.pooling) == ("decoder", "last")
    assert card.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    tokenizer = load_tokenizer(tiny_decoder)
    assert tokenizer.pad_token == tokenizer.eos_token
    tokenizer.padding_side = padding_side
    model = build_relevance_model(card, lora_r=4, lora_alpha=8, lora_dropout=0.0, placement=CPU).eval()
    pairs = encode_pairs(
        tokenizer, ["red shoes", "blue"], ["footwear", "toys for kids and men"], max_length=16
    )
    assert pairs.lengths[0] < pairs.lengths[1]

    def logits(batch: list[int]) -> list[float]:
        with torch.inference_mode():
            return model(**CPU.tensors(pad_batch(pairs, np.array(batch)))).tolist()

    alone = logits([0]) + logits([1])
    assert logits([0, 1]) == pytest.approx(alone, abs=1e-5)
