"""The translation-quality reference set: shape, coverage and script of every row."""

from __future__ import annotations

import re
from collections import Counter
from importlib.resources import files

import pytest

from relctl_translator.reference import HEADER, LANGUAGES, load_reference, parse_reference

MIN_ROWS_PER_LANGUAGE = 20

KANA_OR_KANJI = re.compile(r"[\u3040-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
CJK_HANGUL_OR_ARABIC = re.compile(
    r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    r"\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]"
)
ENGLISH = re.compile(r"[a-z0-9 '\-./,&+()x%]+", re.IGNORECASE)
NON_LATIN = {"ja", "ko", "ar"}


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, str, str]]:
    return load_reference()


def test_header_line_is_exact() -> None:
    text = files("relctl_translator.reference").joinpath("queries.tsv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "language\tquery\tenglish" == HEADER


def test_every_language_has_enough_rows_and_no_other_language(rows: list[tuple[str, str, str]]) -> None:
    counts = Counter(language for language, _, _ in rows)
    assert set(counts) == set(LANGUAGES)
    short = {language: n for language, n in counts.items() if n < MIN_ROWS_PER_LANGUAGE}
    assert not short, f"fewer than {MIN_ROWS_PER_LANGUAGE} rows: {short}"


def test_no_duplicate_language_query_pairs(rows: list[tuple[str, str, str]]) -> None:
    counts = Counter((language, query) for language, query, _ in rows)
    duplicates = [pair for pair, n in counts.items() if n > 1]
    assert not duplicates


def test_no_empty_or_padded_fields(rows: list[tuple[str, str, str]]) -> None:
    for row in rows:
        for field in row:
            assert field and field == field.strip() and "\t" not in field and "\n" not in field, row


def test_english_is_plain_ascii(rows: list[tuple[str, str, str]]) -> None:
    bad = [row for row in rows if not row[2].isascii() or not ENGLISH.fullmatch(row[2])]
    assert not bad


def test_english_differs_from_query_for_non_latin_scripts(rows: list[tuple[str, str, str]]) -> None:
    same = [row for row in rows if row[0] in NON_LATIN and row[1] == row[2]]
    assert not same


@pytest.mark.parametrize(("language", "script"), [("ja", KANA_OR_KANJI), ("ko", HANGUL), ("ar", ARABIC)])
def test_non_latin_queries_are_in_their_script(
    rows: list[tuple[str, str, str]], language: str, script: re.Pattern[str]
) -> None:
    queries = [query for code, query, _ in rows if code == language]
    assert queries
    assert [query for query in queries if not script.search(query)] == []


def test_latin_queries_have_no_cjk_hangul_or_arabic(rows: list[tuple[str, str, str]]) -> None:
    bad = [row for row in rows if row[0] not in NON_LATIN and CJK_HANGUL_OR_ARABIC.search(row[1])]
    assert not bad


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("language\tquery\n", 1),
        ("language\tquery\tenglish\nes\tzapatos\tshoes\nes\tbolso\n", 3),
        ("language\tquery\tenglish\nes\t\tshoes\n", 2),
        ("language\tquery\tenglish\nes\tzapatos \tshoes\n", 2),
    ],
)
def test_malformed_lines_are_named(text: str, line: int) -> None:
    with pytest.raises(ValueError, match=f"line {line}:"):
        parse_reference(text)
