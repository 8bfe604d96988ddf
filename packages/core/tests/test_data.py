"""Tests for loading, validating, cleaning, sampling, hashing and summarising relevance datasets."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relctl_core.data import (
    CleaningReport,
    Example,
    clean_examples,
    dataset_hash,
    file_sha256,
    load_examples,
    load_examples_with_ids,
    read_examples,
    sample_examples,
    split_units,
    summarize,
    write_examples,
)
from relctl_core.errors import InputError

QC_ROWS = [
    {
        "id": 1,
        "task": "QC",
        "language": "es",
        "origin_query": "funda iphone",
        "category_path": "phones,cases",
        "label": 1,
    },
    {
        "id": "b7",
        "language": "ja",
        "origin_query": "腕時計 メンズ",
        "category_path": "watches,men's watches",
        "label": 0,
    },
    {
        "id": 3,
        "language": "pt-BR",
        "origin_query": "",
        "category_path": "toys",
        "label": 1,
        "source": "extra",
    },
]


def expected_examples(lines: list[int]) -> list[Example]:
    return [
        Example(
            str(row["id"]), row["language"], row["origin_query"], row["category_path"], row["label"], line
        )
        for row, line in zip(QC_ROWS, lines, strict=True)
    ]


def write_json_lines(path: Path, rows: list[dict], blank_after_first: bool = False) -> Path:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    if blank_after_first:
        lines.insert(1, "   ")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".txt"])
def test_json_lines_round_trip_skips_blank_lines_and_counts_them(tmp_path: Path, suffix: str) -> None:
    path = write_json_lines(tmp_path / f"train{suffix}", QC_ROWS, blank_after_first=True)

    assert load_examples(path, "QC", require_label=True) == expected_examples([1, 3, 4])


def test_csv_round_trip_reports_the_line_a_record_starts_on(tmp_path: Path) -> None:
    rows = [dict(row) for row in QC_ROWS]
    rows[1]["origin_query"] = "腕時計\nメンズ"  # a quoted field spanning two physical lines
    path = tmp_path / "train.csv"
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(
            stream, ["id", "task", "language", "origin_query", "category_path", "label", "source"]
        )
        writer.writeheader()
        writer.writerows(rows)

    examples = load_examples(path, "QC", require_label=True)

    assert [example.line for example in examples] == [2, 3, 5]
    assert examples[1].query == "腕時計\nメンズ"
    assert [example.label for example in examples] == [1, 0, 1]
    assert [example.id for example in examples] == ["1", "b7", "3"]


def test_parquet_round_trip_uses_row_number_plus_one(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    columns = ["id", "language", "origin_query", "category_path", "label"]
    table = pa.table(
        {name: [str(row[name]) if name == "id" else row[name] for row in QC_ROWS] for name in columns}
    )
    pq.write_table(table, path)

    assert load_examples(path, "QC", require_label=True) == expected_examples([1, 2, 3])


def test_ids_come_back_as_the_file_holds_them(tmp_path: Path) -> None:
    """Examples keep every id as text; a caller that writes rows back (predict) gets each id's own type."""
    json_lines = write_json_lines(tmp_path / "test.jsonl", QC_ROWS)
    examples, ids = load_examples_with_ids(json_lines, "QC", require_label=False)
    assert examples == load_examples(json_lines, "QC", require_label=False)
    assert ids == [1, "b7", 3] and [type(i) for i in ids] == [int, str, int]

    table = pa.table({"id": [7, 8], "language": ["es", "en"], "origin_query": ["a", "b"], "category_path": ["x", "y"]})
    pq.write_table(table, tmp_path / "test.parquet")
    assert load_examples_with_ids(tmp_path / "test.parquet", "QC", require_label=False)[1] == [7, 8]

    (tmp_path / "test.csv").write_text("id,language,origin_query,category_path\n7,es,a,x\n", encoding="utf-8")
    assert load_examples_with_ids(tmp_path / "test.csv", "QC", require_label=False)[1] == ["7"]  # CSV has no types


def test_qi_loads_item_title_and_unlabelled_test_rows(tmp_path: Path) -> None:
    rows = [
        {"id": 10, "task": "QI", "language": "fr", "origin_query": "sac", "item_title": "Sac à dos 20L"},
        {"id": 11, "language": "ko", "origin_query": "가방", "item_title": "Backpack", "label": None},
    ]
    path = write_json_lines(tmp_path / "test_QI.txt", rows)

    examples = load_examples(path, "QI", require_label=False)

    assert examples == [
        Example("10", "fr", "sac", "Sac à dos 20L", None, 1),
        Example("11", "ko", "가방", "Backpack", None, 2),
    ]


def test_csv_empty_label_cells_are_missing_labels(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("id,language,origin_query,category_path,label\n1,en,shoes,shoes,\n", encoding="utf-8")

    assert load_examples(path, "QC", require_label=False) == [Example("1", "en", "shoes", "shoes", None, 2)]
    with pytest.raises(InputError) as caught:
        load_examples(path, "QC", require_label=True)
    assert str(caught.value) == f"{path}:2: missing label"


def test_real_qc_sample_loads(qc_sample: Path) -> None:
    examples = load_examples(qc_sample, "QC", require_label=True)
    summary = summarize(examples)

    assert summary["rows"] == 15_981
    assert summary["positives"] == 10_914
    assert summary["positive_rate"] == pytest.approx(0.683, abs=0.0005)
    assert len(summary["languages"]) == 10
    assert summary["languages"]["pt"]["rows"] == 1757
    assert summary["languages"]["ar"]["rows"] == 1358
    assert examples[0] == Example(
        "1",
        "es",
        "hanma yujiro",
        "phones & telecommunications accessories,mobile phone accessories,mobile phone cases & covers",
        1,
        1,
    )


GOOD = '{"id": %d, "language": "en", "origin_query": "q", "category_path": "c", "label": 1}'


def bad_file_lines(bad_line: str, at: int) -> list[str]:
    lines = [GOOD % number for number in range(1, 6)]
    lines[at - 1] = bad_line
    return lines


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (
            bad_file_lines('{"id": 3, "language": "en",', 3),
            3,
            "malformed JSON: Expecting property name enclosed in double quotes (column 28)",
        ),
        (
            bad_file_lines(
                '{"id": 4, "language": "en", "origin_query": "q", "category_path": "c", "label": 2}', 4
            ),
            4,
            "label must be 0 or 1, got 2",
        ),
        (bad_file_lines(GOOD % 2, 4), 4, "duplicate id '2' (first at line 2)"),
        (
            bad_file_lines('{"id": 3, "language": "en", "category_path": "c", "label": 1}', 3),
            3,
            "missing field 'origin_query'",
        ),
        (
            bad_file_lines('{"id": 2, "language": "en", "origin_query": "q", "label": 1}', 2),
            2,
            "missing field 'category_path'",
        ),
        (
            bad_file_lines(
                '{"id": 5, "language": "en", "origin_query": "q", "category_path": " ", "label": 1}', 5
            ),
            5,
            "empty category_path",
        ),
        (
            bad_file_lines(
                '{"id": 3, "task": "QI", "language": "en", "origin_query": "q", "item_title": "t"}', 3
            ),
            3,
            "task is 'QI' but the file is loaded as 'QC'",
        ),
        (
            bad_file_lines(
                '{"id": 2, "language": "en", "origin_query": 7, "category_path": "c", "label": 1}', 2
            ),
            2,
            "field 'origin_query' must be a string, got number",
        ),
        (
            bad_file_lines(
                '{"id": 1.5, "language": "en", "origin_query": "q", "category_path": "c", "label": 1}', 1
            ),
            1,
            "field 'id' must be a string or an integer, got number",
        ),
        (
            bad_file_lines(
                '{"id": 2, "language": "english!", "origin_query": "q", "category_path": "c", "label": 1}', 2
            ),
            2,
            "language 'english!' is not a language code (2-8 letters or '-')",
        ),
        (bad_file_lines("[1, 2]", 2), 2, "row must be a JSON object, got array"),
        (
            bad_file_lines('{"id": 3, "language": "en", "origin_query": "q", "category_path": "c"}', 3),
            3,
            "missing field 'label'",
        ),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, lines: list[str], line: int, message: str) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(InputError) as caught:
        load_examples(path, "QC", require_label=True)

    assert str(caught.value) == f"{path}:{line}: {message}"


def test_first_bad_row_is_reported(tmp_path: Path) -> None:
    lines = [GOOD % 1, "{broken", '{"id": 3}']
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")

    with pytest.raises(InputError) as caught:
        load_examples(path, "QC", require_label=True)

    assert caught.value.line == 2


def test_non_utf8_bytes_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_bytes((GOOD % 1).encode() + b'\n{"id": 2, "origin_query": "caf\xe9"}\n' + (GOOD % 3).encode())

    with pytest.raises(InputError) as caught:
        load_examples(path, "QC", require_label=True)

    assert str(caught.value) == f"{path}:2: not valid UTF-8 (byte 0xe9 at byte 31 of the line)"


@pytest.mark.parametrize("content", ["", "\n  \n"])
def test_empty_file_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(InputError) as caught:
        load_examples(path, "QC", require_label=True)

    assert str(caught.value) == f"{path}: no rows"


def test_missing_file_and_unsupported_suffix(tmp_path: Path) -> None:
    missing = tmp_path / "absent.jsonl"
    with pytest.raises(InputError) as caught:
        load_examples(missing, "QC", require_label=True)
    assert str(caught.value) == f"{missing}: file not found"

    spreadsheet = tmp_path / "train.xlsx"
    spreadsheet.write_bytes(b"PK")
    with pytest.raises(InputError) as caught:
        load_examples(spreadsheet, "QC", require_label=True)
    assert (
        str(caught.value)
        == f"{spreadsheet}: unsupported file type '.xlsx' (expected .jsonl, .txt, .csv, .parquet)"
    )


def test_csv_missing_column_and_ragged_row(tmp_path: Path) -> None:
    no_target = tmp_path / "no_target.csv"
    no_target.write_text("id,language,origin_query,label\n1,en,q,1\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_examples(no_target, "QC", require_label=True)
    assert str(caught.value) == f"{no_target}:1: missing column 'category_path'"

    ragged = tmp_path / "ragged.csv"
    ragged.write_text(
        "id,language,origin_query,category_path,label\n1,en,q,c,1\n2,en,q,1\n", encoding="utf-8"
    )
    with pytest.raises(InputError) as caught:
        load_examples(ragged, "QC", require_label=True)
    assert str(caught.value) == f"{ragged}:3: expected 5 fields, got 4"


def test_parquet_bad_label_and_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pq.write_table(
        pa.table(
            {
                "id": [1, 2],
                "language": ["en", "de"],
                "origin_query": ["a", "b"],
                "item_title": ["x", "y"],
                "label": [1, 3],
            }
        ),
        path,
    )
    with pytest.raises(InputError) as caught:
        load_examples(path, "QI", require_label=True)
    assert str(caught.value) == f"{path}:2: label must be 0 or 1, got 3"

    with pytest.raises(InputError) as caught:
        load_examples(path, "QC", require_label=True)
    assert str(caught.value) == f"{path}: missing column 'category_path'"


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    path.write_text("id,language\n", encoding="utf-8")

    with pytest.raises(InputError) as caught:
        load_examples(path, "QC", require_label=True)

    assert str(caught.value).startswith(f"{path}: not a readable Parquet file")


def make_example(
    query: str, target: str = "Shoes,Running  Shoes", line: int = 1, label: int | None = 1
) -> Example:
    return Example(str(line), "en", query, target, label, line)


@pytest.mark.parametrize(
    ("switches", "query", "target"),
    [
        ({}, "nike air max", "shoes,running shoes"),
        ({"collapse_spaces": False}, "nike \t air  max", "shoes,running  shoes"),
        ({"strip": False}, " nike air max ", "shoes,running shoes"),
        ({"lowercase": False}, "Nike Air MAX", "Shoes,Running Shoes"),
    ],
)
def test_cleaning_switches(switches: dict[str, bool], query: str, target: str) -> None:
    cleaned, report = clean_examples([make_example("  Nike \t Air  MAX ")], **switches)

    assert [(example.query, example.target) for example in cleaned] == [(query, target)]
    assert report == CleaningReport(rows_in=1, rows_out=1, dropped_empty=0, changed_queries=1)


def test_cleaning_lowercases_unicode_and_collapses_unicode_spaces() -> None:
    cleaned, _ = clean_examples([make_example("ÉTÉ\u3000ÇA  Straße")])

    assert cleaned[0].query == "été ça straße"


def test_cleaning_counts_only_changed_queries_and_keeps_other_fields() -> None:
    examples = [make_example("shoes", line=1), make_example("Shoes", line=2, label=0)]

    cleaned, report = clean_examples(examples)

    assert report.changed_queries == 1
    assert cleaned[1] == Example("2", "en", "shoes", "shoes,running shoes", 0, 2)


def test_empty_queries_are_dropped_or_rejected() -> None:
    examples = [make_example("shoes", line=1), make_example(" \t ", line=2), make_example("", line=3)]

    cleaned, report = clean_examples(examples)
    assert [example.line for example in cleaned] == [1]
    assert report == CleaningReport(rows_in=3, rows_out=1, dropped_empty=2, changed_queries=0)

    with pytest.raises(InputError) as caught:
        clean_examples(examples, drop_empty=False, source="train.jsonl")
    assert str(caught.value) == "train.jsonl:2: empty query"


def test_sample_is_deterministic_ordered_and_seed_dependent() -> None:
    examples = [make_example(f"q{number}", line=number) for number in range(1, 201)]

    first = sample_examples(examples, 50, seed=7)

    assert len(first) == 50
    assert first == sample_examples(examples, 50, seed=7)
    assert [example.line for example in first] == sorted(example.line for example in first)
    assert first != sample_examples(examples, 50, seed=8)
    assert sample_examples(examples, 500, seed=7) == examples
    assert sample_examples(examples, 0, seed=7) == []


def test_sampled_rows_stay_sampled_when_unrelated_rows_are_appended() -> None:
    examples = [make_example(f"q{number}", line=number) for number in range(1, 101)]
    grown = examples + [make_example(f"q{number}", line=number) for number in range(101, 201)]

    chosen = set(sample_examples(examples, 20, seed=1))
    chosen_from_grown = set(sample_examples(grown, 40, seed=1))

    assert len(chosen & chosen_from_grown) > 10


def test_dataset_hash_is_stable_ignores_line_and_sees_labels() -> None:
    examples = [make_example("shoes", line=1), make_example("boots", line=2, label=0)]

    digest = dataset_hash(examples)

    assert digest == dataset_hash(list(examples))
    assert len(digest) == 64
    assert dataset_hash([replace(example, line=example.line + 10) for example in examples]) == digest
    assert dataset_hash([examples[0], replace(examples[1], label=1)]) != digest
    assert dataset_hash([examples[0], replace(examples[1], label=None)]) != digest
    assert dataset_hash(examples[::-1]) != digest


def test_summarize_counts_rows_and_positives_per_language() -> None:
    examples = [
        Example("1", "en", "a", "t", 1, 1),
        Example("2", "en", "b", "t", 0, 2),
        Example("3", "de", "c", "t", 1, 3),
        Example("4", "en", "d", "t", 1, 4),
    ]

    assert summarize(examples) == {
        "rows": 4,
        "positives": 3,
        "positive_rate": 0.75,
        "languages": {
            "de": {"rows": 1, "positives": 1, "positive_rate": 1.0},
            "en": {"rows": 3, "positives": 2, "positive_rate": 2 / 3},
        },
    }


def test_summarize_unlabelled_rows_and_no_rows() -> None:
    examples = [Example("1", "en", "a", "t", None, 1), Example("2", "fr", "b", "t", 1, 2)]

    summary = summarize(examples)

    assert (summary["rows"], summary["positives"], summary["positive_rate"]) == (2, None, None)
    assert summary["languages"]["en"] == {"rows": 1, "positives": None, "positive_rate": None}
    assert summary["languages"]["fr"] == {"rows": 1, "positives": 1, "positive_rate": 1.0}
    assert summarize([]) == {"rows": 0, "positives": 0, "positive_rate": None, "languages": {}}


def test_write_and_read_examples_round_trip_atomically(tmp_path: Path) -> None:
    examples = [
        Example("1", "ja", "腕時計\u2028メンズ", "watches", 1, 3),
        Example("x", "en", "", "t", None, 9),
    ]
    path = tmp_path / "artifacts" / "dataset.jsonl"

    write_examples(path, examples)
    write_examples(path, examples)

    assert read_examples(path) == examples
    assert [entry.name for entry in path.parent.iterdir()] == ["dataset.jsonl"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "dataset.jsonl"
    write_examples(path, [make_example("shoes")])
    before = path.read_bytes()

    def rows_then_failure():
        yield make_example("boots")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_examples(path, rows_then_failure())

    assert path.read_bytes() == before
    assert [entry.name for entry in tmp_path.iterdir()] == ["dataset.jsonl"]


@pytest.mark.parametrize(
    "foreign_row",
    [
        '{"id":"2","query":"q"}',
        "[1]",
        '{"id":"2","language":"en","query":"q","target":"t","label":"1","line":2}',
    ],
)
def test_read_examples_rejects_foreign_rows(tmp_path: Path, foreign_row: str) -> None:
    path = tmp_path / "dataset.jsonl"
    good_row = '{"id":"1","language":"en","query":"q","target":"t","label":1,"line":1}'
    path.write_text(f"{good_row}\n{foreign_row}\n", encoding="utf-8")

    with pytest.raises(InputError) as caught:
        read_examples(path)

    assert caught.value.line == 2


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    content = bytes(range(256)) * 5000
    path.write_bytes(content)

    assert file_sha256(path) == hashlib.sha256(content).hexdigest()
    with pytest.raises(InputError):
        file_sha256(tmp_path / "absent.bin")


def test_split_units_are_what_a_split_keeps_in_one_fold() -> None:
    rows = [
        Example("1", "es", "zapatos", "shoes,sports shoes,running", 1, 1),
        Example("2", "es", "zapatos", "shoes,boots", 0, 2),
        Example("3", "fr", "coque", "phones, tablets & more,cases", 1, 3),
    ]
    assert split_units(rows, "QI", "category-aware", 2) == (2, "distinct queries")
    assert split_units(rows, "QC", "category-aware", 2) == (3, "category groups")
    # A level name may hold ", ": only a comma without a space separates levels.
    assert split_units(rows, "QC", "category-aware", 1) == (2, "category groups")
    assert split_units(rows, "QC", "random", 1) == split_units(rows, "QI", "stratified", 1) == (3, "rows")
