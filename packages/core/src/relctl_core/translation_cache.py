"""The persistent translation cache in the run database, keyed by (backend, model, source text).

``model_key`` is the one place that says what "model" is for each backend: the translate stage stores its
translations under it, and `relctl predict` looks them up (and has the rest translated) under it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from relctl_core.db import Translation, session_scope
from relctl_core.errors import InputError
from relctl_core.modelstore import INFO_FILE, resolve_backbone
from relctl_core.settings import Settings, load_settings
from relctl_core.spec import DEFAULT_TRANSLATION_MODELS
from relctl_core.stages import stable_hash

_CHUNK = 500  # keeps IN (...) lists well inside every database's parameter limit
APERTIUM_PAIR = "spa-eng"  # the one Apertium language pair the apertium backend runs
NEURAL_BACKENDS = ("causal-lm", "seq2seq")


def model_key(
    backend: str,
    model: str | None,
    file: Mapping[str, str] | None,
    *,
    settings: Settings | None = None,
    prompt: str | None = None,
) -> str:
    """What identifies a backend's output in the cache besides the backend's name.

    identity: nothing (""). file: the file's name and the start of its content hash, so that editing the
    file never serves stale translations. apertium: its language pair. seq2seq and causal-lm: the model
    (``model``, or the backend's default) as ``model_identity`` names it, found as the translate stage
    finds it (the model store of ``settings``, a local folder, a hub id); causal-lm adds a hash of its
    few-shot ``prompt``, so that a new prompt never serves old answers.
    """
    if backend == "identity":
        return ""
    if backend == "file":
        if not file:
            raise InputError("the file backend needs translation.path", path="translation.path")
        return f"{Path(file['path']).name}@{file['sha256'][:12]}"
    if backend == "apertium":
        return f"apertium:{APERTIUM_PAIR}"
    if backend in NEURAL_BACKENDS:
        name = model or DEFAULT_TRANSLATION_MODELS.get(backend)
        if not name:
            raise InputError(f"the {backend} backend needs translation.model (a local folder or hub id)", path="translation.model")
        key = model_identity(name, resolve_backbone(settings or load_settings(), name, path="translation.model"))
        if backend == "causal-lm":
            if prompt is None:
                raise ValueError("the causal-lm backend's cache key holds its prompt: pass prompt=")
            key += f"|prompt@{stable_hash(prompt)[:8]}"
        return key
    raise InputError(f"unknown translation backend '{backend}'", path="translation.backend")


def model_identity(name: str, where: str) -> str:
    """What names a model's outputs in the translation cache: a store model by its recorded weights hash,
    a local folder by its config and weight files (name and size), a hub id by itself."""
    folder = Path(where)
    info = folder / INFO_FILE
    if info.is_file():
        recorded = json.loads(info.read_text())
        return f"{name}@{str(recorded.get('weights_sha256') or recorded.get('source', ''))[:12]}"
    if folder.is_dir():
        parts = [(folder / "config.json").read_text() if (folder / "config.json").is_file() else ""]
        parts += [f"{f.name}:{f.stat().st_size}" for f in sorted(folder.iterdir()) if f.suffix in (".safetensors", ".bin")]
        return f"{folder.name}@{stable_hash(parts)[:12]}"
    return name


def stage_model_key(output: Mapping[str, Any], backend: str, model: str | None, file: Mapping[str, str] | None, settings: Settings) -> str | None:
    """The key a finished translate stage stored its translations under: the one it recorded in its output
    (``cache.model``); for a stage of an older relctl that recorded none, the key its settings give here,
    where that needs nothing of the translator's own (every backend but causal-lm, whose key holds its
    prompt) and the model is found here. None where it cannot be known here."""
    recorded = (output.get("cache") or {}).get("model")
    if isinstance(recorded, str):
        return recorded
    if backend == "causal-lm":
        return None
    try:
        return model_key(backend, model, file, settings=settings)
    except InputError:
        return None


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
