"""The translation-augmentation template, row files, tokenized pairs and batch orders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from relctl_core.errors import InputError

from relctl_trainer.inputs import (
    CHUNK_BATCHES,
    build_query_text,
    encode_pairs,
    length_grouped_batches,
    pad_batch,
    read_rows,
    scoring_batches,
)


def test_build_query_text_for_each_mode() -> None:
    assert build_query_text("zapatillas mujer", "women's sneakers", "orig") == "zapatillas mujer"
    assert build_query_text("zapatillas mujer", "women's sneakers", "en") == "women's sneakers"
    assert (
        build_query_text("zapatillas mujer", "women's sneakers", "orig+en")
        == "zapatillas mujer - women's sneakers"
    )


def test_build_query_text_does_not_repeat_an_english_query() -> None:
    assert build_query_text("running shoes", "running shoes", "orig+en") == "running shoes"
    assert build_query_text("Running Shoes", "running shoes ", "orig+en") == "Running Shoes"


def test_build_query_text_falls_back_to_the_original_without_a_translation() -> None:
    for mode in ("orig", "en", "orig+en"):
        assert build_query_text("子供用 自転車", None, mode) == "子供用 自転車"


def test_build_query_text_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="orig\\+en"):
        build_query_text("a", "b", "en+orig")


def _write(path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_read_rows_keeps_ids_and_labels(tmp_path) -> None:
    rows = [
        {"id": "q1", "language": "es", "query_text": "a", "target_text": "b", "label": 1},
        {"id": 7, "language": "ja", "query_text": "c", "target_text": "d", "label": 0},
    ]
    path = _write(tmp_path / "rows.jsonl", [json.dumps(row) for row in rows] + [""])
    read = read_rows(path, labelled=True)
    assert [(row.id, row.language, row.label) for row in read] == [("q1", "es", 1), (7, "ja", 0)]


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not valid JSON"),
        (
            '{"id": "x", "language": "es", "query_text": "a", "target_text": "b", "label": 2}',
            "label must be 0 or 1",
        ),
        ('{"id": "x", "language": "es", "query_text": "a", "label": 1}', "target_text must be a string"),
        ('{"id": null, "language": "es", "query_text": "a", "target_text": "b", "label": 1}', "id must be"),
    ],
)
def test_read_rows_names_the_file_and_line_of_a_bad_row(tmp_path, bad_line: str, message: str) -> None:
    good = json.dumps({"id": "q1", "language": "es", "query_text": "a", "target_text": "b", "label": 1})
    path = _write(tmp_path / "rows.jsonl", [good, good, bad_line])
    with pytest.raises(InputError, match=message) as raised:
        read_rows(path, labelled=True)
    assert raised.value.line == 3
    assert raised.value.file == path


def test_read_rows_accepts_unlabelled_test_rows_and_rejects_unlabelled_training_rows(tmp_path) -> None:
    path = _write(
        tmp_path / "test.jsonl",
        [json.dumps({"id": "t", "language": "en", "query_text": "a", "target_text": "b"})],
    )
    assert read_rows(path, labelled=False)[0].label is None
    with pytest.raises(InputError, match="label"):
        read_rows(path, labelled=True)


def test_read_rows_reports_a_missing_or_empty_file(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_rows(tmp_path / "absent.jsonl", labelled=True)
    with pytest.raises(InputError, match="no rows"):
        read_rows(_write(tmp_path / "empty.jsonl", [""]), labelled=True)


def test_length_grouped_batches_cover_every_row_once_and_depend_only_on_the_seed() -> None:
    lengths = np.random.default_rng(0).integers(3, 60, size=1000)
    batches = length_grouped_batches(lengths, 32, np.random.default_rng([42, 1]))
    covered = np.concatenate(batches)
    assert sorted(covered.tolist()) == list(range(1000))
    assert max(len(batch) for batch in batches) == 32
    # Sorted within their chunk, so every batch is ordered by length, longest first.
    assert all(np.all(np.diff(lengths[batch]) <= 0) for batch in batches)
    again = length_grouped_batches(lengths, 32, np.random.default_rng([42, 1]))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other_epoch = length_grouped_batches(lengths, 32, np.random.default_rng([42, 2]))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other_epoch, strict=True))


def test_length_grouping_pads_much_less_than_random_batches() -> None:
    lengths = np.random.default_rng(0).integers(3, 60, size=3200)

    def padded_tokens(batches: list[np.ndarray]) -> int:
        return sum(int(lengths[batch].max()) * len(batch) - int(lengths[batch].sum()) for batch in batches)

    grouped = length_grouped_batches(lengths, 32, np.random.default_rng(1))
    shuffled = np.random.default_rng(1).permutation(3200)
    random_batches = [shuffled[i : i + 32] for i in range(0, 3200, 32)]
    assert padded_tokens(grouped) < 0.2 * padded_tokens(random_batches)


def test_batches_grouped_by_task_hold_one_task_but_where_two_meet_in_a_chunk() -> None:
    rng = np.random.default_rng(0)
    lengths, tasks = rng.integers(3, 60, size=1000), rng.integers(0, 2, size=1000)
    batches = length_grouped_batches(lengths, 32, np.random.default_rng([42, 1]), groups=tasks)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    mixed = [batch for batch in batches if len(set(tasks[batch].tolist())) > 1]
    chunks = -(-1000 // (32 * CHUNK_BATCHES))
    assert len(mixed) <= chunks  # at most one per chunk, where its two tasks meet
    single = [batch for batch in batches if len(set(tasks[batch].tolist())) == 1]
    assert all(np.all(np.diff(lengths[batch]) <= 0) for batch in single)
    scored = scoring_batches(lengths, 32, groups=tasks)
    assert sorted(np.concatenate(scored).tolist()) == list(range(1000))
    assert sum(len(set(tasks[batch].tolist())) > 1 for batch in scored) <= 1


def test_scoring_batches_cover_every_row_once() -> None:
    lengths = np.array([5, 9, 2, 9, 4])
    batches = scoring_batches(lengths, 2)
    assert sorted(np.concatenate(batches).tolist()) == [0, 1, 2, 3, 4]
    assert [lengths[batch].tolist() for batch in batches] == [[9, 9], [5, 4], [2]]


def test_encode_and_pad_pairs_with_the_tiny_tokenizer(tiny_backbone: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    pairs = encode_pairs(
        tokenizer, ["red shoes", "blue"], ["footwear for kids and men", "toys"], max_length=6
    )
    assert pairs.lengths.tolist() == [6, 5]
    assert tokenizer.convert_ids_to_tokens(pairs.input_ids[1]) == ["[CLS]", "blue", "[SEP]", "toys", "[SEP]"]

    right = pad_batch(pairs, np.array([1, 0]))
    assert right["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]
    assert right["input_ids"][0, -1] == tokenizer.pad_token_id

    tokenizer.padding_side = "left"
    left = pad_batch(encode_pairs(tokenizer, ["blue"], ["toys"], max_length=6), np.array([0]))
    assert left["input_ids"].tolist() == [pairs.input_ids[1]]
