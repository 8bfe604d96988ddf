"""The causal-lm backend: a decoder LLM translates queries from a few-shot prompt.

Speed comes from four things, none of which changes what greedy decoding answers:
- the few-shot prefix, the same for every query, goes through the model once; each batch starts from a
  copy of its key/value cache, so a query costs only its own short suffix and answer;
- queries are batched (the caller sorts them by length, so padding is small) and each row stops at its
  first newline, finished rows leaving the batch;
- the answer's length is bounded by the source's (`generation.max_new_tokens`);
- logits are computed for the last position only.
`translate_naive` is the plain loop (one `generate` per query over the whole prompt, same stops, same
bound): the benchmark's baseline, and the tests' reference for "same outputs".
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from relctl_translator.generation import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_NEW_TOKENS,
    batch_or_each,
    load_failure,
    max_new_tokens,
    pick_device,
)
from relctl_translator.languages import name_of

INSTRUCTION = "Translate each online shop search query into English. Keep numbers, sizes and model names.\n\n"

# (language, query, English). Written for this prompt: none of them is in the reference set that scores
# the backend (a test checks that), and each answer differs from its source, so that copying the source
# is never what the examples show.
FEW_SHOT: tuple[tuple[str, str, str], ...] = (
    ("es", "mochila escolar para niña rosa", "pink school backpack for girls"),
    ("fr", "chaussettes en laine homme lot de 5", "men's wool socks pack of 5"),
    ("de", "wasserdichte wanderschuhe damen", "waterproof hiking shoes for women"),
    ("ja", "ワイヤレスイヤホン 防水", "waterproof wireless earphones"),
    ("pt", "capinha para celular motorola g84", "motorola g84 phone case"),
    ("ko", "겨울 목도리 남성용", "men's winter scarf"),
    ("it", "lampada da scrivania led ricaricabile", "rechargeable led desk lamp"),
    ("ar", "ساعة ذكية للرجال مقاومة للماء", "waterproof smart watch for men"),
    ("pl", "koszulka piłkarska dla dzieci", "kids football shirt"),
)

_LABEL = re.compile(r"\s*[A-Z][a-z]+( [A-Z][a-z]+)?:\s")  # where a model starts a new "Language: ..." line
_QUOTES = "\"'`“”‘’«»「」『』"


def prompt_prefix() -> str:
    """The part of every prompt that does not depend on the query: instruction and examples."""
    shots = "".join(f"{name_of(lang)}: {query}\nEnglish: {english}\n\n" for lang, query, english in FEW_SHOT)
    return INSTRUCTION + shots


def prompt_suffix(text: str, language: str) -> str:
    """The query's own part, naming its source language. No trailing space: 'English:' is followed by the
    answer's first token, which carries its own leading space in the tokenizers of this family."""
    return f"{name_of(language)}: {text}\nEnglish:"


def extract_answer(generated: str, query: str) -> str | None:
    """The English in what the model wrote after 'English:', or None when there is none.

    The first line only; cut where the model starts another 'Language:' line on the same line; quotes
    around the answer stripped. An answer that is an example's English (for another query) was copied
    from the prompt, not translated: None.
    """
    line = generated.split("\n", 1)[0]
    label = _LABEL.search(line)
    if label and label.start() > 0:
        line = line[: label.start()]
    answer = line.strip().strip(_QUOTES).strip()
    if not answer:
        return None
    copied = {english.casefold() for _, source, english in FEW_SHOT if source.casefold() != query.casefold()}
    if answer.casefold() in copied:
        return None
    return answer


class CausalLMBackend:
    """Few-shot translation with a decoder LLM (Gemma-3-270M by default, any causal LM on a user's host)."""

    name = "causal-lm"

    def __init__(
        self,
        model_path: str,
        *,
        model_key: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = model_key
        self.device = pick_device(device)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_path)
            lm = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        except Exception as error:  # noqa: BLE001 - any load failure becomes one clear message
            raise load_failure(self.name, model_path, error) from None
        self._setup(lm, tokenizer, batch_size=batch_size, cap=max_new_tokens)

    @classmethod
    def from_loaded(cls, lm: Any, tokenizer: Any, *, model_key: str, batch_size: int = DEFAULT_BATCH_SIZE, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> CausalLMBackend:
        """A backend around a model already in memory (tests build tiny random ones)."""
        backend = cls.__new__(cls)
        backend.model = model_key
        backend.device = str(next(lm.parameters()).device)
        backend._setup(lm, tokenizer, batch_size=batch_size, cap=max_new_tokens)
        return backend

    def _setup(self, lm: Any, tokenizer: Any, *, batch_size: int, cap: int) -> None:
        import torch

        self.lm = lm.to(self.device).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.cap = cap
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        # Generation stops at the first token that holds a newline, or at the end of the sequence.
        stops = {i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i])}
        stops |= {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        self.stop_ids = sorted(stops)
        self._stop_set = frozenset(stops)
        self._stop_lookup = torch.zeros(max(len(tokenizer), lm.config.vocab_size), dtype=torch.bool, device=self.device)
        self._stop_lookup[self.stop_ids] = True
        self.prefix_ids = self._encode(prompt_prefix(), special=True)
        with torch.inference_mode():
            self._prefix_cache = self.lm(input_ids=self.prefix_ids[None], use_cache=True, logits_to_keep=1).past_key_values

    def _encode(self, text: str, *, special: bool) -> Any:
        import torch

        ids = self.tokenizer(text, add_special_tokens=special)["input_ids"]
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def translate(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
        rows = list(zip(texts, languages, strict=True))
        out: list[str | None] = []
        for start in range(0, len(rows), self.batch_size):
            out += batch_or_each(
                lambda chunk: self._translate_batch([t for t, _ in chunk], [lang for _, lang in chunk]),
                rows[start : start + self.batch_size],
            )
        return out

    def _translate_batch(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
        import torch

        suffixes = [self._encode(prompt_suffix(t, lang), special=False) for t, lang in zip(texts, languages, strict=True)]
        sources = [len(self._encode(t, special=False)) for t in texts]
        limits = torch.tensor([max_new_tokens(n, self.cap) for n in sources], device=self.device)
        rows, width, prefix = len(texts), max(len(s) for s in suffixes), len(self.prefix_ids)
        # Left-pad the suffixes: every row's answer then starts at the same column.
        ids = torch.full((rows, width), self.pad_id, dtype=torch.long, device=self.device)
        mask = torch.zeros((rows, width), dtype=torch.long, device=self.device)
        for row, suffix in enumerate(suffixes):
            ids[row, width - len(suffix) :] = suffix
            mask[row, width - len(suffix) :] = 1
        attention = torch.cat([torch.ones((rows, prefix), dtype=torch.long, device=self.device), mask], dim=1)
        positions = prefix + (mask.cumsum(dim=1) - 1).clamp(min=0)
        cache = copy.deepcopy(self._prefix_cache)
        cache.batch_repeat_interleave(rows)

        answers: list[list[int]] = [[] for _ in texts]
        alive = torch.arange(rows, device=self.device)  # original row of each row still in the batch
        step_input, step_positions, seen = ids, positions, prefix + width
        with torch.inference_mode():
            while alive.numel():
                logits = self.lm(
                    input_ids=step_input,
                    attention_mask=attention,
                    position_ids=step_positions,
                    past_key_values=cache,
                    cache_position=torch.arange(seen - step_input.shape[1], seen, device=self.device),
                    use_cache=True,
                    logits_to_keep=1,
                ).logits[:, -1]
                chosen = logits.argmax(dim=-1)
                stopped = self._stop_lookup[chosen]
                for index, (row, token, stop) in enumerate(zip(alive.tolist(), chosen.tolist(), stopped.tolist(), strict=True)):
                    if not stop:
                        answers[row].append(token)
                    stopped[index] = stop or len(answers[row]) >= limits[row]
                keep = (~stopped).nonzero().flatten()
                if keep.numel() < alive.numel():
                    if keep.numel() == 0:
                        break
                    cache.batch_select_indices(keep)
                    alive, chosen, attention = alive[keep], chosen[keep], attention[keep]
                    step_positions = step_positions[keep]
                step_input = chosen[:, None]
                step_positions = step_positions[:, -1:] + 1
                attention = torch.cat([attention, attention.new_ones((alive.numel(), 1))], dim=1)
                seen += 1
        decoded = [self.tokenizer.decode(tokens, skip_special_tokens=True) for tokens in answers]
        return [extract_answer(text, query) for text, query in zip(decoded, texts, strict=True)]

    def translate_naive(self, text: str, language: str) -> str | None:
        """The plain loop's answer for one query: `generate` over the whole prompt, greedy, same stops and
        the same length bound as `translate`. Slow by design (the benchmark's baseline)."""
        import torch

        prompt = torch.cat([self.prefix_ids, self._encode(prompt_suffix(text, language), special=False)])[None]
        limit = max_new_tokens(len(self._encode(text, special=False)), self.cap)
        with torch.inference_mode():
            out = self.lm.generate(
                input_ids=prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=limit,
                do_sample=False,
                num_beams=1,
                eos_token_id=self.stop_ids,
                pad_token_id=self.pad_id,
            )
        tokens = [t for t in out[0, prompt.shape[1] :].tolist() if t not in self._stop_set]
        return extract_answer(self.tokenizer.decode(tokens, skip_special_tokens=True), text)
