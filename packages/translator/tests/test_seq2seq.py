"""The seq2seq backend on tiny random encoder-decoder models built here (no network, no hub)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

from pathlib import Path
from typing import Any

import pytest
import torch
from relctl_core.errors import InputError
from tokenizers import Tokenizer, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import (
    M2M100Config,
    M2M100ForConditionalGeneration,
    NllbTokenizer,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

from relctl_translator import generation
from relctl_translator.seq2seq import Seq2SeqBackend

CORPUS = [
    "zapatos rojos de cuero",
    "bolso negro para mujer",
    "camisa azul manga larga para hombre",
    "reloj inteligente resistente al agua",
    "zapatillas running",
    "funda movil",
    "veneno",
]
WORDS = sorted({word for line in CORPUS for word in line.split()})
QUERIES = [
    "zapatos",
    "camisa azul manga larga para hombre de cuero negro",
    "bolso negro",
    "reloj inteligente resistente al agua para mujer",
    "funda",
    "zapatillas running rojos",
]
NLLB_CODES = ["eng_Latn", "spa_Latn", "deu_Latn", "fra_Latn"]


def word_tokenizer(extra: list[str]) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over CORPUS (ids: <pad> 0, </s> 1, <unk> 2) that appends </s>."""
    vocab = {token: i for i, token in enumerate(["<pad>", "</s>", "<unk>", *extra, *WORDS])}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_input_names=["input_ids", "attention_mask"],
    )


def save_t5(folder: Path, extra: list[str]) -> Path:
    tokenizer = word_tokenizer(extra)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_nllb(folder: Path) -> Path:
    """A character-level NllbTokenizer knowing four FLORES codes, and a tiny M2M100 (NLLB's architecture)."""
    characters = sorted({c for line in CORPUS for c in line if c != " "})
    vocab = {token: i for i, token in enumerate(["<s>", "<pad>", "</s>", "<unk>", "▁", *characters])}
    tokenizer = NllbTokenizer(vocab=vocab, merges=[], additional_special_tokens=NLLB_CODES)
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def plain_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(save_t5(tmp_path_factory.mktemp("plain"), []))


@pytest.fixture(scope="module")
def madlad_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(save_t5(tmp_path_factory.mktemp("madlad"), ["<2en>", "<2de>"]))


@pytest.fixture(scope="module")
def nllb_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(save_nllb(tmp_path_factory.mktemp("nllb")))


def backend(path: str, **options: Any) -> Seq2SeqBackend:
    return Seq2SeqBackend(path, model_key="seq2seq:tiny", device="cpu", **options)


def spy_generate(backend: Seq2SeqBackend) -> list[dict[str, Any]]:
    """Records the arguments of each generate call (input_ids as a list of rows) and still generates."""
    calls: list[dict[str, Any]] = []
    original = backend.hf_model.generate

    def generate(**kwargs: Any) -> Any:
        calls.append({**kwargs, "input_ids": kwargs["input_ids"].tolist(), "mask": kwargs["attention_mask"]})
        return original(**kwargs)

    backend.hf_model.generate = generate
    return calls


def output_tokens(backend: Seq2SeqBackend, text: str | None) -> int:
    return 0 if text is None else len(backend.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_one_string_or_none_per_input_and_deterministic(plain_path: str) -> None:
    first = backend(plain_path, batch_size=4)
    assert first.name == "seq2seq" and first.model == "seq2seq:tiny" and first.family == "plain"
    languages = ["es"] * len(QUERIES)
    english = first.translate(QUERIES, languages)
    assert len(english) == len(QUERIES)
    assert all(text is None or (isinstance(text, str) and text == text.strip() and text) for text in english)
    assert any(text is not None for text in english)
    assert first.translate(QUERIES, languages) == english
    assert backend(plain_path, batch_size=4).translate(QUERIES, languages) == english
    assert first.translate([], []) == []


def test_a_batch_of_mixed_lengths_gives_what_one_by_one_calls_give(plain_path: str) -> None:
    # A cap below 2 * source + 8 makes the bound the same for every row, however rows are batched.
    languages = ["es"] * len(QUERIES)
    batched = backend(plain_path, batch_size=8, max_new_tokens=8)
    calls = spy_generate(batched)
    together = batched.translate(QUERIES, languages)
    assert len(calls) == 1 and not bool(calls[0]["mask"].all())  # one padded batch
    alone = backend(plain_path, batch_size=1, max_new_tokens=8).translate(QUERIES, languages)
    assert together == alone
    assert len(set(together)) > 1  # the outputs depend on the input


def test_max_new_tokens_bounds_the_output(plain_path: str) -> None:
    languages = ["es"] * len(QUERIES)
    capped = backend(plain_path, max_new_tokens=3)
    english = capped.translate(QUERIES, languages)
    assert all(output_tokens(capped, text) <= 3 for text in english)
    free = backend(plain_path, max_new_tokens=64)
    assert any(output_tokens(free, text) > 3 for text in free.translate(QUERIES, languages))


def test_the_bound_follows_the_longest_source_of_each_chunk(plain_path: str) -> None:
    chunked = backend(plain_path, batch_size=2, max_new_tokens=64)
    calls = spy_generate(chunked)
    english = chunked.translate(QUERIES, ["es"] * len(QUERIES))
    assert len(calls) == 3
    for number, call in enumerate(calls):
        longest = max(len(chunked.tokenizer(q)["input_ids"]) for q in QUERIES[2 * number : 2 * number + 2])
        bound = generation.max_new_tokens(longest, cap=64)
        assert call["max_new_tokens"] == bound
        assert call["do_sample"] is False and call["num_beams"] == 1
        assert "forced_bos_token_id" not in call
        assert all(output_tokens(chunked, text) <= bound for text in english[2 * number : 2 * number + 2])


def test_a_failing_row_is_none_and_the_rest_of_its_chunk_still_translates(plain_path: str) -> None:
    reference = backend(plain_path, batch_size=1).translate(["zapatos", "bolso negro"], ["es", "es"])
    flaky = backend(plain_path, batch_size=8)
    poison = flaky.tokenizer.convert_tokens_to_ids("veneno")
    original = flaky.hf_model.generate

    def generate(**kwargs: Any) -> Any:
        if (kwargs["input_ids"] == poison).any():
            raise RuntimeError("boom")
        return original(**kwargs)

    flaky.hf_model.generate = generate
    assert flaky.translate(["zapatos", "veneno", "bolso negro"], ["es", "es", "es"]) == [
        reference[0],
        None,
        reference[1],
    ]


def test_a_vocabulary_with_2en_is_madlad_and_the_source_is_prefixed(
    madlad_path: str, plain_path: str
) -> None:
    madlad = backend(madlad_path)
    assert madlad.family == "madlad"
    assert madlad.source_text("zapatos rojos", "es") == "<2en> zapatos rojos"
    calls = spy_generate(madlad)
    english = madlad.translate(["zapatos rojos", "bolso"], ["es", "es"])
    assert len(english) == 2
    tag = madlad.tokenizer.convert_tokens_to_ids("<2en>")
    assert [row[0] for row in calls[0]["input_ids"]] == [tag, tag]
    plain = backend(plain_path)
    assert plain.family == "plain"
    assert plain.source_text("zapatos rojos", "es") == "zapatos rojos"


def test_a_vocabulary_with_flores_codes_is_nllb_and_rows_are_grouped_by_language(nllb_path: str) -> None:
    nllb = backend(nllb_path, batch_size=8)
    assert nllb.family == "nllb"
    assert nllb.source_text("zapatos", "es") == "zapatos"
    calls = spy_generate(nllb)
    texts = ["zapatos rojos", "bolso negro", "funda movil", "camisa azul", "reloj"]
    languages = ["es", "xx", "de", "ES", "it"]  # xx: no FLORES code; it: a code this vocabulary lacks
    english = nllb.translate(texts, languages)
    assert english[1] is None and english[4] is None
    assert all(isinstance(english[i], str) and english[i] for i in (0, 2, 3))
    english_id = nllb.tokenizer.convert_tokens_to_ids("eng_Latn")
    spanish, german = (nllb.tokenizer.convert_tokens_to_ids(code) for code in ("spa_Latn", "deu_Latn"))
    assert [[row[0] for row in call["input_ids"]] for call in calls] == [[spanish, spanish], [german]]
    assert all(call["forced_bos_token_id"] == english_id for call in calls)
    # the same rows translate the same alone, and one chunk of unknown languages gives only None
    assert nllb.translate(["funda movil"], ["de"]) == [english[2]]
    assert nllb.translate(["zapatos", "bolso"], ["xx", ""]) == [None, None]


def test_a_folder_without_a_model_is_an_input_error(tmp_path: Path) -> None:
    empty = tmp_path / "no-model-here"
    empty.mkdir()
    with pytest.raises(InputError) as raised:
        backend(str(empty))
    assert str(empty) in str(raised.value) and raised.value.path == "translation.model"
    assert "cannot load the seq2seq translation model" in str(raised.value)
    only_tokenizer = tmp_path / "tokenizer-only"
    word_tokenizer([]).save_pretrained(only_tokenizer)
    with pytest.raises(InputError, match="tokenizer-only"):
        backend(str(only_tokenizer))
