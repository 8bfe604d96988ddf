"""Gold English references for real-looking shopper queries, used to score translation backends with chrF."""

from __future__ import annotations

from importlib.resources import files

LANGUAGES: tuple[str, ...] = ("es", "fr", "pt", "it", "de", "pl", "ja", "ko", "ar")

FILENAME = "queries.tsv"
HEADER = "language\tquery\tenglish"


def parse_reference(text: str) -> list[tuple[str, str, str]]:
    """Parse the TSV text into (language, query, english) rows; a malformed line raises ValueError."""
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        raise ValueError(f"{FILENAME} line 1: header must be {HEADER!r}")
    rows: list[tuple[str, str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{FILENAME} line {number}: expected 3 tab-separated fields, got {len(fields)}")
        if any(not field or field != field.strip() for field in fields):
            raise ValueError(f"{FILENAME} line {number}: empty field or leading/trailing whitespace")
        language, query, english = fields
        rows.append((language, query, english))
    return rows


def load_reference() -> list[tuple[str, str, str]]:
    """The reference set as (language, query, english) rows, read from the package data."""
    text = files(__package__).joinpath(FILENAME).read_text(encoding="utf-8")
    return parse_reference(text)
