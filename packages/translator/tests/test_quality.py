"""chrF on the reference set, and its bootstrap interval."""

from __future__ import annotations

from pathlib import Path

from relctl_translator.quality import chrf, chrf_interval, reference_quality


def test_perfect_translations_have_an_interval_of_one_point() -> None:
    english = ["red phone case", "cheap running shoes for women", "usb c charger 65w"]
    assert chrf(english, english) == 100.0
    assert chrf_interval(english, english, resamples=200) == (100.0, 100.0)


def test_the_interval_holds_the_score_and_narrows_with_more_rows() -> None:
    hypotheses = ["red phone cover", "shoes women cheap", "charger usb 65 w", "tent for four", "wireless earbuds"]
    references = ["red phone case", "cheap women's shoes", "65w usb charger", "4 person tent", "wireless earphones"]
    low, high = chrf_interval(hypotheses, references, resamples=1000)
    assert 0 < low < chrf(hypotheses, references) < high < 100
    # The same pairs eight times over: the same score, a narrower interval.
    many_low, many_high = chrf_interval(hypotheses * 8, references * 8, resamples=1000)
    assert high - low > 1.5 * (many_high - many_low) > 0


def test_reference_quality_gives_each_language_its_interval_only_when_asked(tmp_path: Path) -> None:
    from relctl_core.migrate import ensure_schema

    from relctl_translator.backends import make_backend

    database = f"sqlite:///{tmp_path / 'cache.db'}"
    ensure_schema(database)
    backend = make_backend("identity", None, None, settings=None, batch_size=64)
    plain = reference_quality(database, backend, batch_size=64)
    assert all("low" not in quality for quality in plain.values())
    with_intervals = reference_quality(database, backend, batch_size=64, resamples=300)
    assert with_intervals.keys() == plain.keys() and len(plain) == 9
    for language, quality in with_intervals.items():
        assert quality["chrf"] == plain[language]["chrf"]
        assert quality["low"] <= quality["chrf"] <= quality["high"], language
