"""A tiny random BERT whose vocabulary comes from the test's own data, for fast pipeline tests."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from relctl_trainer.testing import build_tiny_backbone as build_backbone


def build_tiny_backbone(directory: Path, texts_from: Iterable[Path], max_words: int = 3000) -> Path:
    counts: dict[str, int] = {}
    for path in texts_from:
        for word in re.findall(r"\w+", path.read_text(encoding="utf-8").lower()):
            counts[word] = counts.get(word, 0) + 1
    return build_backbone(directory, sorted(counts, key=lambda w: (-counts[w], w))[:max_words])
