"""A tiny random Gemma-3 with a tokenizer trained on the prompt's own text, for fast tests of the causal-lm
backend and of pipelines that use it. Its answers are nonsense; what it exercises is real."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


def build_tiny_causal_lm(
    texts: Iterable[str] = (), *, seed: int = 0, sliding_window: int = 512, directory: Path | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer): a byte-level BPE tokenizer (400 pieces, trained on the few-shot prompt and `texts`)
    and a 2-layer Gemma-3 around it, seeded. With `directory`, both are saved there as a model folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    from relctl_translator.causal_lm import prompt_prefix

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<eos>", "<bos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator([prompt_prefix(), *texts], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=sliding_window,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    lm = Gemma3ForCausalLM(config).eval()
    if directory is not None:
        lm.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    return lm, tokenizer
