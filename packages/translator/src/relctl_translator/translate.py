"""Translate a dataset's unique queries to English through the cache: each text is translated once, ever."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from relctl_core import translation_cache as cache

from relctl_translator.backends import Backend

# A piece longer than this many characters is split at punctuation and its parts translated apart: a small
# model loses the thread of a long text, and the answer's length bound follows the part's length.
MAX_PIECE_CHARS = 200
_BREAK = re.compile(r"(?<=[.,;:!?。、，；：！？)\]])\s*")


@dataclass
class TranslationSummary:
    unique_queries: int
    english_passthrough: int
    cached: int
    translated: int
    failed: int
    failed_by_language: dict[str, int] = field(default_factory=dict)
    split_queries: int = 0


def split_long(text: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """`text` in pieces of at most about `limit` characters, cut after punctuation where there is any (else
    at spaces, else anywhere); joining the pieces with spaces gives the text back, up to whitespace."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for part in (p for p in _BREAK.split(text) if p):
        for chunk in _hard_wrap(part, limit):
            if current and len(current) + 1 + len(chunk) > limit:
                pieces.append(current)
                current = chunk
            else:
                current = f"{current} {chunk}" if current else chunk
    if current:
        pieces.append(current)
    return pieces


def _hard_wrap(part: str, limit: int) -> list[str]:
    if len(part) <= limit:
        return [part]
    words, out, line = part.split(" "), [], ""
    for word in words:
        while len(word) > limit:  # no space to cut at (CJK): cut anywhere
            out += [line] if line else []
            out.append(word[:limit])
            word, line = word[limit:], ""
        if line and len(line) + 1 + len(word) > limit:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return out + ([line] if line else [])


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
    its original text and is counted as failed (and not cached, so a better backend can try again).

    Each unique text is sent once; cached ones are not sent at all; the rest go in batches of similar
    length (short first); a text over MAX_PIECE_CHARS goes as pieces cut at punctuation, rejoined after.
    """
    language_of: dict[str, str] = {}
    for query, language in zip(queries, languages, strict=True):
        language_of.setdefault(query, language)
    english = {q: q for q, lang in language_of.items() if lang == "en"}
    todo = [q for q in language_of if q not in english]
    cached = cache.lookup(database_url, backend.name, backend.model, todo)
    result = {**english, **cached}
    missing = [q for q in todo if q not in cached]
    pieces_of = {q: split_long(q) for q in missing}
    piece_language: dict[str, str] = {}
    for query, pieces in pieces_of.items():
        for piece in pieces:
            piece_language.setdefault(piece, language_of[query])
    order = sorted(piece_language, key=len)  # similar lengths batch well
    done: dict[str, str | None] = {}
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        answers = backend.translate(batch, [piece_language[p] for p in batch])
        for piece, translated in zip(batch, answers, strict=True):
            done[piece] = translated.strip() if translated and translated.strip() else None
        if on_progress:
            on_progress(min(start + batch_size, len(order)), len(order))

    fresh: dict[str, tuple[str, str | None]] = {}
    failed: Counter[str] = Counter()
    for query, pieces in pieces_of.items():
        parts = [done[p] for p in pieces]
        if any(part is None for part in parts):
            failed[language_of[query]] += 1
            result[query] = query
        else:
            result[query] = " ".join(p for p in parts if p)
            fresh[query] = (result[query], language_of[query])
    cache.store(database_url, backend.name, backend.model, fresh)
    summary = TranslationSummary(
        unique_queries=len(language_of),
        english_passthrough=len(english),
        cached=len(cached),
        translated=len(fresh),
        failed=sum(failed.values()),
        failed_by_language=dict(sorted(failed.items())),
        split_queries=sum(1 for pieces in pieces_of.values() if len(pieces) > 1),
    )
    return result, summary
