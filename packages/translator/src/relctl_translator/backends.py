"""Translation backends: each turns a batch of queries (with their language) into English."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from relctl_core.errors import InputError
from relctl_core.files import read_utf8
from relctl_core.translation_cache import model_key


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


def make_backend(backend: str, model: str | None, file: dict[str, str] | None) -> Backend:
    if backend == "identity":
        return IdentityBackend()
    if backend == "file":
        if not file:
            raise InputError("the file backend needs translation.path", path="translation.path")
        return FileBackend(file)
    raise InputError(f"translation backend '{backend}' is not available in this version of relctl-translator", path="translation.backend")
