"""Translate a dataset's unique queries to English through the cache: each text is translated once, ever."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from relctl_core import translation_cache as cache

from relctl_translator.backends import Backend


@dataclass
class TranslationSummary:
    unique_queries: int
    english_passthrough: int
    cached: int
    translated: int
    failed: int


def translate_queries(
    database_url: str,
    backend: Backend,
    queries: Sequence[str],
    languages: Sequence[str],
    *,
    batch_size: int = 16,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, str], TranslationSummary]:
    """query -> English for every query. English queries pass through; a query the backend fails on keeps
    its original text and is counted as failed (and not cached, so a better backend can try again)."""
    language_of: dict[str, str] = {}
    for query, language in zip(queries, languages, strict=True):
        language_of.setdefault(query, language)
    english = {q: q for q, lang in language_of.items() if lang == "en"}
    todo = [q for q in language_of if q not in english]
    cached = cache.lookup(database_url, backend.name, backend.model, todo)
    result = {**english, **cached}
    missing = sorted((q for q in todo if q not in cached), key=len)  # similar lengths batch well
    fresh: dict[str, tuple[str, str | None]] = {}
    failed = 0
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        for query, translated in zip(batch, backend.translate(batch, [language_of[q] for q in batch]), strict=True):
            if translated is None or not translated.strip():
                failed += 1
                result[query] = query
            else:
                result[query] = translated.strip()
                fresh[query] = (translated.strip(), language_of[query])
        if on_progress:
            on_progress(min(start + batch_size, len(missing)), len(missing))
    cache.store(database_url, backend.name, backend.model, fresh)
    return result, TranslationSummary(len(language_of), len(english), len(cached), len(fresh), failed)
