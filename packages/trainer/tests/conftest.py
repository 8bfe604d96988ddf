"""Fixtures of the trainer's tests: a tiny random BERT backbone and a toy relevance task."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from relctl_trainer.testing import build_tiny_backbone as build_toy_backbone

COLOURS = ["red", "blue", "green", "black", "white", "pink"]
ITEMS = ["shoes", "boots", "lamp", "sofa", "phone", "cable", "hat", "scarf"]
# Targets made of RELEVANT_WORDS are relevant whatever the query says: a signal that a tiny
# model learns in a few steps, so that tests see the loss fall and the ROC-AUC rise.
RELEVANT_WORDS = ["footwear", "apparel", "garden"]
IRRELEVANT_WORDS = ["toys", "tools", "books"]
FILLER = ["and", "for", "with", "kids", "men", "women", "sale", "new"]


def build_tiny_backbone(directory: Path) -> Path:
    """A random 2-layer BERT (hidden 32) and a word-level tokenizer over the toy vocabulary."""
    return build_toy_backbone(directory, COLOURS + ITEMS + RELEVANT_WORDS + IRRELEVANT_WORDS + FILLER, max_positions=64)


def build_tiny_decoder(directory: Path) -> Path:
    """A random 2-layer Gemma-3 text decoder (hidden 32) whose tokenizer, like many, has no pad token."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    words = ["<eos>", "<bos>", "<unk>"] + COLOURS + ITEMS + RELEVANT_WORDS + IRRELEVANT_WORDS + FILLER
    vocab = {word: index for index, word in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <eos> $B:1", special_tokens=[("<bos>", 1), ("<eos>", 0)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<eos>", bos_token="<bos>", unk_token="<unk>"
    ).save_pretrained(directory)
    config = Gemma3TextConfig(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=64,
        sliding_window=16,
        pad_token_id=None,
        eos_token_id=0,
        bos_token_id=1,
    )
    generator_state = torch.get_rng_state()
    torch.manual_seed(0)
    Gemma3ForCausalLM(config).save_pretrained(directory)
    torch.set_rng_state(generator_state)
    return directory


@pytest.fixture(scope="session")
def tiny_decoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_decoder(tmp_path_factory.mktemp("tiny-gemma")))


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_backbone(tmp_path_factory.mktemp("tiny-bert")))


def toy_rows(count: int, *, seed: int, labelled: bool = True) -> list[dict]:
    """Rows of the toy task: the label is whether the target names a 'relevant' department."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        label = rng.random() < 0.5
        query = " ".join(rng.sample(COLOURS, rng.randint(1, 2)) + [rng.choice(ITEMS)])
        target_words = [rng.choice(RELEVANT_WORDS if label else IRRELEVANT_WORDS)]
        target_words += rng.sample(FILLER, rng.randint(0, 2))
        rng.shuffle(target_words)
        row = {
            "id": f"r{seed}-{index}",
            "language": rng.choice(["en", "es", "ja"]),
            "query_text": query,
            "target_text": " ".join(target_words),
        }
        if labelled:
            row["label"] = int(label)
        rows.append(row)
    return rows


def write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Row files of the toy task: 512 training, 64 validation and 24 unlabelled test rows."""
    directory = tmp_path_factory.mktemp("toy-rows")
    return {
        "train_file": write_rows(directory / "train.jsonl", toy_rows(512, seed=1)),
        "val_file": write_rows(directory / "val.jsonl", toy_rows(64, seed=2)),
        "test_file": write_rows(directory / "test.jsonl", toy_rows(24, seed=3, labelled=False)),
    }


@pytest.fixture(scope="session")
def make_rows() -> Callable[..., list[dict]]:
    return toy_rows


@pytest.fixture(scope="session")
def make_job(tiny_backbone: str, toy_files: dict[str, str]) -> Callable[..., object]:
    """A TrainJob on the toy task (64 steps over 2 epochs) with a fast learning rate. ``train``, ``lora``
    and ``resources`` override settings of those sections; other keyword arguments override job fields."""
    from relctl_core.spec import LoraSpec, ResourcesSpec, TrainSpec

    from relctl_trainer.job import TrainJob

    def make(
        output_dir: Path,
        *,
        train: dict[str, object] | None = None,
        lora: dict[str, object] | None = None,
        resources: dict[str, object] | None = None,
        **fields: object,
    ) -> TrainJob:
        # fp32: the tests that hold one process against several ranks, or a resumed run against an
        # unbroken one, ask for equal results to 1e-5, which bf16 rounding does not give across
        # batchings. test_training's bf16 test trains the same toy job in bf16.
        toy_training = {"epochs": 2, "batch_size": 16, "lr": 2e-2, "scheduler": "constant", "warmup_ratio": 0.0, "max_length": 24, "precision": "fp32"}
        return TrainJob(
            **{
                "model_path": tiny_backbone,
                "train": TrainSpec(**{**toy_training, **(train or {})}),
                "lora": LoraSpec(**(lora or {})),
                "resources": ResourcesSpec(**(resources or {})),
                **toy_files,
                "output_dir": str(output_dir),
                **fields,
            }
        )

    return make
