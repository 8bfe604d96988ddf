"""Translation through the shared cache: each text translated once, English passed through, failures kept."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from relctl_core.errors import InputError
from relctl_core.migrate import ensure_schema

from relctl_translator.backends import IdentityBackend, load_translation_file, make_backend
from relctl_translator.translate import split_long, translate_queries


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


def test_a_long_text_is_split_at_punctuation_and_each_piece_fits() -> None:
    text = "funda de silicona para iphone 13, color negro mate; protector de cámara incluido. " * 6
    pieces = split_long(text, limit=80)
    assert len(pieces) > 1 and all(len(p) <= 80 for p in pieces)
    assert " ".join(pieces).split() == text.split()  # nothing lost or reordered
    assert all(p.endswith((",", ";", ".")) for p in pieces[:-1])  # cut after punctuation, not mid-phrase
    assert split_long("zapatos", limit=80) == ["zapatos"]
    unbroken = "子供用自転車" * 30  # no punctuation, no spaces: cut anywhere
    assert "".join(split_long(unbroken, limit=50)) == unbroken and max(map(len, split_long(unbroken, limit=50))) <= 50


def test_long_queries_go_as_pieces_and_come_back_joined(database: str) -> None:
    backend = CountingBackend()
    long_query = "a" * 150 + ", " + "b" * 150
    english, summary = translate_queries(database, backend, [long_query, "zapatos"], ["es", "es"])
    assert english[long_query] == "A" * 150 + ", " + "B" * 150
    assert sorted(backend.asked) == ["a" * 150 + ",", "b" * 150, "zapatos"]
    assert summary.split_queries == 1 and summary.translated == 2


def test_failures_are_counted_per_language(database: str) -> None:
    english, summary = translate_queries(database, CountingBackend(), ["hola!", "ciao!", "buty", "adieu!"], ["es", "it", "pl", "it"])
    assert summary.failed == 3 and summary.failed_by_language == {"es": 1, "it": 2}
    assert english["hola!"] == "hola!" and english["buty"] == "BUTY"


def test_chrf_per_language_on_the_reference_set(database: str) -> None:
    from relctl_translator.quality import reference_quality
    from relctl_translator.reference import LANGUAGES, load_reference

    gold = {query: english for _, query, english in load_reference()}

    class GoldBackend:
        name, model = "gold", "v1"

        def translate(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
            return [gold[t] for t in texts]

    perfect = reference_quality(database, GoldBackend())
    assert sorted(perfect) == sorted(LANGUAGES)
    assert all(q["chrf"] == 100.0 and q["rows"] >= 20 and q["failed"] == 0 for q in perfect.values())
    untranslated = reference_quality(database, IdentityBackend())
    # Untranslated Japanese, Korean and Arabic share hardly a character 6-gram with English.
    assert all(untranslated[lang]["chrf"] < 15 for lang in ("ja", "ko", "ar"))
    assert all(untranslated[lang]["chrf"] < perfect[lang]["chrf"] for lang in LANGUAGES)
