"""The persistent translation cache in the run database, keyed by (backend, model, source text)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from relctl_core.db import Translation, session_scope

_CHUNK = 500  # keeps IN (...) lists well inside every database's parameter limit


def model_key(backend: str, model: str | None, file: dict[str, str] | None) -> str:
    """What identifies a backend's output in the cache besides its name: the model, or the content of
    the file backend's file (editing the file must never serve stale translations)."""
    if backend == "file" and file:
        return f"{Path(file['path']).name}@{file['sha256'][:12]}"
    return model or ""


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lookup(database_url: str, backend: str, model: str, texts: Iterable[str]) -> dict[str, str]:
    """Cached English for those of `texts` that have it."""
    by_hash = {source_hash(t): t for t in texts}
    found: dict[str, str] = {}
    hashes = list(by_hash)
    with session_scope(database_url) as session:
        for start in range(0, len(hashes), _CHUNK):
            rows = session.execute(
                select(Translation.source_hash, Translation.target_text).where(
                    Translation.backend == backend,
                    Translation.model == model,
                    Translation.source_hash.in_(hashes[start : start + _CHUNK]),
                )
            )
            for digest, target in rows:
                found[by_hash[digest]] = target
    return found


def store(database_url: str, backend: str, model: str, translations: dict[str, tuple[str, str | None]]) -> int:
    """Insert source -> (English, source language); rows another worker stored meanwhile are kept as they are."""
    if not translations:
        return 0
    existing = lookup(database_url, backend, model, translations)
    fresh = {k: v for k, v in translations.items() if k not in existing}
    rows = [
        Translation(backend=backend, model=model, source_hash=source_hash(text), source_text=text, target_text=english, source_language=lang)
        for text, (english, lang) in fresh.items()
    ]
    try:
        with session_scope(database_url) as session:
            session.add_all(rows)
    except IntegrityError:
        # A concurrent translate stage stored some of the same texts: fall back to one row at a time.
        for row in rows:
            try:
                with session_scope(database_url) as session:
                    session.add(Translation(**{c: getattr(row, c) for c in ("backend", "model", "source_hash", "source_text", "target_text", "source_language")}))
            except IntegrityError:
                continue
    return len(fresh)
