"""Translation through the shared cache: each text translated once, English passed through, failures kept."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from relctl_core.errors import InputError
from relctl_core.migrate import ensure_schema

from relctl_translator.backends import IdentityBackend, load_translation_file, make_backend
from relctl_translator.translate import translate_queries


class CountingBackend:
    """Upper-cases its input and remembers what it was asked; fails on texts containing '!'."""

    name = "counting"
    model = "v1"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def translate(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
        self.asked.extend(texts)
        return [None if "!" in t else t.upper() for t in texts]


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    ensure_schema(url)
    return url


def test_each_unique_query_is_translated_once_ever(database: str) -> None:
    backend = CountingBackend()
    queries = ["zapatos", "zapatos", "bolso", "shoes"]
    languages = ["es", "es", "es", "en"]
    english, summary = translate_queries(database, backend, queries, languages)
    assert english == {"zapatos": "ZAPATOS", "bolso": "BOLSO", "shoes": "shoes"}
    assert sorted(backend.asked) == ["bolso", "zapatos"]  # English passes through, duplicates asked once
    assert (summary.unique_queries, summary.english_passthrough, summary.translated, summary.cached) == (3, 1, 2, 0)

    second = CountingBackend()
    english_again, summary_again = translate_queries(database, second, queries, languages)
    assert english_again == english
    assert second.asked == [] and summary_again.cached == 2 and summary_again.translated == 0


def test_cache_is_keyed_by_backend_model(database: str) -> None:
    translate_queries(database, CountingBackend(), ["zapatos"], ["es"])
    other = CountingBackend()
    other.model = "v2"
    translate_queries(database, other, ["zapatos"], ["es"])
    assert other.asked == ["zapatos"]


def test_a_failed_query_keeps_its_text_and_is_not_cached(database: str) -> None:
    backend = CountingBackend()
    english, summary = translate_queries(database, backend, ["oferta!", "bolso"], ["es", "es"])
    assert english["oferta!"] == "oferta!" and summary.failed == 1
    retry = CountingBackend()
    translate_queries(database, retry, ["oferta!", "bolso"], ["es", "es"])
    assert retry.asked == ["oferta!"]


def test_identity_backend() -> None:
    assert IdentityBackend().translate(["a b"], ["es"]) == ["a b"]


def test_translation_file_formats_and_errors(tmp_path: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_text("query\tenglish\nzapatos\tshoes\n", encoding="utf-8")
    assert load_translation_file(tsv) == {"zapatos": "shoes"}
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"query": "bolso", "english": "bag"}\n', encoding="utf-8")
    assert load_translation_file(jsonl) == {"bolso": "bag"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("query\tenglish\nzapatos\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.tsv:2: expected two columns"):
        load_translation_file(bad)
    headless = tmp_path / "t.csv"
    headless.write_text("zapatos,shoes\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"t.csv:1: the first line must be the header"):
        load_translation_file(headless)


def test_file_backend_is_keyed_by_file_content(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("query\tenglish\nzapatos\tshoes\n", encoding="utf-8")
    first = make_backend("file", None, {"path": str(path), "sha256": "a" * 64})
    second = make_backend("file", None, {"path": str(path), "sha256": "b" * 64})
    assert first.model != second.model
    assert first.translate(["zapatos", "bolso"], ["es", "es"]) == ["shoes", None]
