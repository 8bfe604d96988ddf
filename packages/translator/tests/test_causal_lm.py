"""The causal-lm backend: prompt, answer extraction, and batched prefix-cached decoding that answers exactly
what the plain one-generate-per-query loop answers (on a tiny random Gemma-3 built here)."""

from __future__ import annotations

import os

import pytest
import torch

from relctl_translator.causal_lm import (
    FEW_SHOT,
    CausalLMBackend,
    extract_answer,
    prompt_prefix,
    prompt_suffix,
)
from relctl_translator.reference import load_reference
from relctl_translator.testing import build_tiny_causal_lm

os.environ["HF_HUB_OFFLINE"] = "1"

QUERIES = [
    ("es", "zapatos"),
    ("ja", "子供用 自転車 16インチ"),
    ("de", "kabellose kopfhörer bluetooth mit mikrofon"),
    ("fr", "coque"),
    ("ko", "겨울 목도리"),
    ("pl", "koszulka piłkarska dla dzieci rozmiar 140 czerwona"),
    ("ar", "ساعة ذكية"),
]


def tiny_backend(*, batch_size: int = 8, seed: int = 0) -> CausalLMBackend:
    lm, tokenizer = build_tiny_causal_lm([prompt_suffix(q, lang) for lang, q in QUERIES], seed=seed)
    return CausalLMBackend.from_loaded(lm, tokenizer, model_key="tiny", batch_size=batch_size, max_new_tokens=12)


def test_prompt_names_the_source_language_and_ends_where_the_answer_starts() -> None:
    assert prompt_suffix("zapatos rojos", "es") == "Spanish: zapatos rojos\nEnglish:"
    assert prompt_suffix("赤い靴", "ja").startswith("Japanese: ")
    assert prompt_suffix("buty", "xx").startswith("xx: ")  # an unknown code is named as written
    prefix = prompt_prefix()
    assert all(f"English: {english}\n" in prefix for _, _, english in FEW_SHOT)


def test_no_few_shot_example_is_in_the_reference_set() -> None:
    """chrF on the reference set would flatter the backend if the prompt held the answers."""
    reference = {(lang, query) for lang, query, _ in load_reference()}
    reference_english = {english for _, _, english in load_reference()}
    assert not {(lang, query) for lang, query, _ in FEW_SHOT} & reference
    assert not {english for _, _, english in FEW_SHOT} & reference_english


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        (" women's running shoes\n\nFrench: chaussures", "women's running shoes"),
        (' "red shoes"', "red shoes"),
        (" 「red shoes」", "red shoes"),
        (" red shoes Japanese: 赤い靴", "red shoes"),
        ("   \n red shoes", None),  # the first line is empty: the model answered nothing
        ("", None),
        (' ""', None),
    ],
)
def test_extract_answer_takes_the_first_line_without_quotes_or_a_next_label(generated: str, expected: str | None) -> None:
    assert extract_answer(generated, "zapatos rojos") == expected


def test_an_example_copied_from_the_prompt_is_a_failure_not_an_answer() -> None:
    language, source, english = FEW_SHOT[0]
    assert extract_answer(f" {english}\n", "zapatos rojos") is None
    assert extract_answer(f" {english.upper()}", "zapatos rojos") is None  # case does not hide a copy
    # ...unless the query is that example's own source: then it is the right answer.
    assert extract_answer(f" {english}", source) == english


def test_batched_prefix_cached_decoding_answers_exactly_what_the_plain_loop_answers() -> None:
    backend = tiny_backend(batch_size=4)
    texts, languages = [q for _, q in QUERIES], [lang for lang, _ in QUERIES]
    naive = [backend.translate_naive(text, lang) for text, lang in zip(texts, languages, strict=True)]
    assert backend.translate(texts, languages) == naive
    one_by_one = tiny_backend(batch_size=1)
    assert one_by_one.translate(texts, languages) == naive
    assert any(answer for answer in naive)  # the comparison is not between two lists of failures


def test_the_first_answer_step_sees_exactly_the_whole_prompt() -> None:
    """Token equality alone is weak on a random model (its argmax barely depends on the context), so compare
    the logits of the first answer token: batched, left-padded, from the cached prefix, against one forward
    of each whole prompt. Wrong positions, a pad attended to or a stale cache all move them."""
    backend = tiny_backend(batch_size=8)
    texts, languages = [q for _, q in QUERIES], [lang for lang, _ in QUERIES]
    logits: list[torch.Tensor] = []
    hook = backend.lm.lm_head.register_forward_hook(lambda _m, _i, out: logits.append(out[:, -1].detach().clone()))
    try:
        backend.translate(texts, languages)
        batched = logits[0]
        for text, language in zip(texts, languages, strict=True):
            logits.clear()
            backend.translate_naive(text, language)
            assert torch.allclose(batched[texts.index(text)], logits[0][0], atol=1e-4), text
    finally:
        hook.remove()
    assert batched.shape[0] == len(texts)


def test_answers_are_bounded_by_the_source_length() -> None:
    backend = tiny_backend()
    lengths: list[int] = []
    decode = backend.tokenizer.decode

    def counting_decode(tokens: list[int], **kwargs: object) -> str:
        lengths.append(len(tokens))  # the answer's tokens, as generated
        return decode(tokens, **kwargs)

    backend.tokenizer.decode = counting_decode  # type: ignore[method-assign]
    texts = ["a", "koszulka piłkarska dla dzieci rozmiar 140 czerwona"]
    backend.translate(texts, ["es", "pl"])
    bounds = [min(backend.cap, 2 * len(backend.tokenizer(t, add_special_tokens=False)["input_ids"]) + 8) for t in texts]
    assert len(lengths) == 2 and all(n <= bound for n, bound in zip(lengths, bounds, strict=True))
    assert lengths[1] > bounds[0] or lengths[0] < bounds[0]  # the short query got its own, tighter bound


def test_a_row_that_breaks_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = tiny_backend(batch_size=8)
    texts, languages = [q for _, q in QUERIES], [lang for lang, _ in QUERIES]
    expected = backend.translate(texts, languages)
    real = backend._translate_batch

    def breaks_on_coque(batch: list[str], langs: list[str]) -> list[str | None]:
        if "coque" in batch:
            raise RuntimeError("boom")
        return real(batch, langs)

    monkeypatch.setattr(backend, "_translate_batch", breaks_on_coque)
    got = backend.translate(texts, languages)
    broken = texts.index("coque")
    assert got[broken] is None
    assert got[:broken] + got[broken + 1 :] == expected[:broken] + expected[broken + 1 :]


def test_a_folder_with_no_model_is_a_clear_error(tmp_path: object) -> None:
    from relctl_core.errors import InputError

    with pytest.raises(InputError, match="cannot load the causal-lm translation model") as caught:
        CausalLMBackend(str(tmp_path), model_key="x")
    assert str(tmp_path) in str(caught.value)
