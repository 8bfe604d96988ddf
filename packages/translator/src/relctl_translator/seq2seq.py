"""Encoder-decoder translation backend (MADLAD-400, NLLB, Marian opus-mt-xx-en, plain T5) on transformers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relctl_translator.generation import (
    DEFAULT_BATCH_SIZE,
    batch_or_each,
    load_failure,
    max_new_tokens,
    pick_device,
)
from relctl_translator.languages import FLORES

MADLAD_TARGET = "<2en>"
NLLB_TARGET = "eng_Latn"
T5_MODEL_TYPES = frozenset({"t5", "mt5", "umt5"})


def detect_family(vocabulary: dict[str, int] | Sequence[str], model_type: str) -> str:
    """'madlad' (a T5-family model whose vocabulary has <2en>), 'nllb' (has eng_Latn) or 'plain'."""
    if MADLAD_TARGET in vocabulary and model_type in T5_MODEL_TYPES:
        return "madlad"
    if NLLB_TARGET in vocabulary:
        return "nllb"
    return "plain"


class Seq2SeqBackend:
    """Translates queries into English with a sequence-to-sequence model, greedily, in batches."""

    name = "seq2seq"

    def __init__(
        self,
        model_path: str,
        *,
        model_key: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | None = None,
        max_new_tokens: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model_key
        self.model_path = model_path
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.device = pick_device(device)
        self.tokenizer, self.hf_model = _load(model_path, self.device)
        self.vocabulary = self.tokenizer.get_vocab()
        self.family = detect_family(self.vocabulary, getattr(self.hf_model.config, "model_type", "") or "")
        self.english_id = self.vocabulary[NLLB_TARGET] if self.family == "nllb" else None

    def source_text(self, text: str, language: str) -> str:
        """What is tokenized for `text`: MADLAD takes the target tag first, the others the text as it is."""
        if self.family == "madlad":
            return f"{MADLAD_TARGET} {text}"
        return text

    def translate(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
        """English for each text; None where the language is unknown (NLLB) or generation failed."""
        if len(texts) != len(languages):
            raise ValueError(f"{len(texts)} texts but {len(languages)} languages")
        results: list[str | None] = [None] * len(texts)
        for start in range(0, len(texts), self.batch_size):
            rows = list(range(start, min(start + self.batch_size, len(texts))))
            for code, group in self._groups(rows, languages):
                sources = [self.source_text(texts[i], languages[i]) for i in group]
                translated = batch_or_each(lambda batch, code=code: self._generate(list(batch), code), sources)
                for i, english in zip(group, translated, strict=True):
                    results[i] = english
        return results

    def _groups(self, rows: list[int], languages: Sequence[str]) -> list[tuple[str | None, list[int]]]:
        """NLLB: rows by FLORES code (rows whose code is unknown or not in the vocabulary are left out).

        The other families: all rows in one group.
        """
        if self.family != "nllb":
            return [(None, rows)]
        groups: dict[str, list[int]] = {}
        for i in rows:
            code = FLORES.get((languages[i] or "").strip().lower())
            if code is not None and code in self.vocabulary:
                groups.setdefault(code, []).append(i)
        return list(groups.items())

    def _generate(self, sources: list[str], code: str | None) -> list[str | None]:
        import torch

        if code is not None:
            self.tokenizer.src_lang = code
        encoded = self.tokenizer(sources, padding=True, return_tensors="pt")
        input_ids = encoded["input_ids"].to(self.device)
        attention_mask = encoded["attention_mask"].to(self.device)
        lengths = attention_mask.sum(dim=1).tolist()
        longest = int(max(lengths))
        options: dict[str, Any] = {}
        if self.english_id is not None:
            options["forced_bos_token_id"] = self.english_id
        with torch.inference_mode():
            output = self.hf_model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=max_new_tokens(longest, cap=self.max_new_tokens),
                do_sample=False,
                num_beams=1,
                **options,
            )
        # Each row keeps only as many tokens as its own source allows (the decoder's start token first), so
        # a translation never depends on the batch it was in.
        rows = [row[: 1 + max_new_tokens(int(n), cap=self.max_new_tokens)] for row, n in zip(output, lengths, strict=True)]
        decoded = self.tokenizer.batch_decode(rows, skip_special_tokens=True)
        return [text.strip() or None for text in decoded]


def _load(model_path: str, device: str) -> tuple[Any, Any]:
    """Tokenizer and model from a folder or hub id, in eval mode on `device`; InputError if that fails."""
    try:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForSeq2SeqLM.from_pretrained(model_path, dtype=dtype)
        model = model.to(device).eval()
    except Exception as exc:
        raise load_failure("seq2seq", model_path, exc) from exc
    return tokenizer, model
