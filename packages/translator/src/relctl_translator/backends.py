"""Translation backends: each turns a batch of queries (with their language) into English."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from relctl_core.errors import InputError
from relctl_core.files import read_utf8
from relctl_core.modelstore import resolve_backbone
from relctl_core.settings import Settings, load_settings
from relctl_core.spec import DEFAULT_TRANSLATION_MODELS
from relctl_core.translation_cache import APERTIUM_PAIR, NEURAL_BACKENDS, model_key

from relctl_translator.generation import DEFAULT_BATCH_SIZE


class Backend(Protocol):
    name: str
    model: str  # what identifies the backend's output in the cache ("" when it has no model)

    def translate(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
        """English for each text; None where the backend could not translate it."""
        ...


class IdentityBackend:
    """Passes queries through unchanged: the `orig` baseline and a stand-in for pre-translated data."""

    name = "identity"
    model = ""

    def translate(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
        return list(texts)


class FileBackend:
    """Looks translations up in a user-supplied file: TSV/CSV with a header (query, english) or JSON lines."""

    name = "file"

    def __init__(self, file: dict[str, str]) -> None:
        self.path = Path(file["path"])
        self.model = model_key(self.name, None, file)
        self.table = load_translation_file(self.path)

    def translate(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
        return [self.table.get(text) or self.table.get(text.lower()) for text in texts]


def load_translation_file(path: Path) -> dict[str, str]:
    """query -> English from a .tsv/.csv (header: query, english) or .jsonl ({"query", "english"}) file."""
    table: dict[str, str] = {}
    text = read_utf8(path, str(path))
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                table[str(row["query"])] = str(row["english"])
            except (ValueError, KeyError, TypeError):
                raise InputError('expected a JSON object with "query" and "english"', file=path, line=number) from None
        return table
    delimiter = "," if path.suffix == ".csv" else "\t"
    rows = csv.reader(text.splitlines(), delimiter=delimiter)
    header = next(rows, None)
    if header is None or [h.strip().lower() for h in header[:2]] != ["query", "english"]:
        raise InputError("the first line must be the header: query, english", file=path, line=1)
    for number, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) < 2 or not row[1].strip():
            raise InputError("expected two columns: query, english", file=path, line=number)
        table[row[0]] = row[1].strip()
    return table


class ApertiumBackend:
    """Spanish -> English with Apertium's rule-based `spa-eng` pair (Debian: apertium-eng-spa), when installed.

    Rows in other languages fail (None): they keep their text and are counted, as any failure is.
    """

    name = "apertium"
    pair = APERTIUM_PAIR

    def __init__(self) -> None:
        self.binary = shutil.which("apertium")
        if self.binary is None:
            raise InputError(
                "the apertium backend needs Apertium's spa-eng pair: apt-get install apertium-eng-spa",
                path="translation.backend",
            )
        self.model = model_key(self.name, None, None)

    def translate(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
        spanish = [i for i, lang in enumerate(languages) if lang == "es"]
        out: list[str | None] = [None] * len(texts)
        if not spanish:
            return out
        # One text a line in, one a line out; `-u` leaves unknown words unmarked (no '*' before them).
        lines = self._run("\n".join(texts[i].replace("\n", " ") for i in spanish))
        if lines is not None and len(lines) == len(spanish):
            for i, line in zip(spanish, lines, strict=True):
                out[i] = line.strip() or None
            return out
        for i in spanish:  # the line count did not match: translate the rows one by one
            single = self._run(texts[i])
            out[i] = single[0].strip() if single else None
        return out

    def _run(self, text: str) -> list[str] | None:
        done = subprocess.run(
            [str(self.binary), "-u", self.pair], input=text, capture_output=True, text=True, timeout=600, check=False
        )
        return done.stdout.rstrip("\n").split("\n") if done.returncode == 0 else None


def cache_model(backend: str, model: str | None, file: dict[str, str] | None, *, settings: Settings | None = None) -> str:
    """What a translation config's backend stores its translations under in the cache, besides its name:
    relctl_core.translation_cache.model_key, given this translator's few-shot prompt for causal-lm.
    Cheap: no model is loaded."""
    prompt = None
    if backend == "causal-lm":
        from relctl_translator.causal_lm import prompt_prefix

        prompt = prompt_prefix()
    return model_key(backend, model, file, settings=settings, prompt=prompt)


def make_backend(
    backend: str,
    model: str | None,
    file: dict[str, str] | None,
    *,
    settings: Settings | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | None = None,
) -> Backend:
    """The backend a translation config names, loaded and ready (a neural model is loaded here)."""
    if backend == "identity":
        return IdentityBackend()
    if backend == "file":
        if not file:
            raise InputError("the file backend needs translation.path", path="translation.path")
        return FileBackend(file)
    if backend == "apertium":
        return ApertiumBackend()
    if backend in NEURAL_BACKENDS:
        settings = settings or load_settings()
        name = model or DEFAULT_TRANSLATION_MODELS.get(backend)
        if not name:
            raise InputError(f"the {backend} backend needs translation.model (a local folder or hub id)", path="translation.model")
        where = resolve_backbone(settings, name, path="translation.model")
        key = cache_model(backend, model, file, settings=settings)
        if backend == "causal-lm":
            from relctl_translator.causal_lm import CausalLMBackend

            return CausalLMBackend(where, model_key=key, batch_size=batch_size, device=device)
        from relctl_translator.seq2seq import Seq2SeqBackend

        return Seq2SeqBackend(where, model_key=key, batch_size=batch_size, device=device)
    raise InputError(f"unknown translation backend '{backend}'", path="translation.backend")
