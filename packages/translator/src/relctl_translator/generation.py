"""What every neural backend shares: how long an answer may be, and which device and threads to use."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

from relctl_core.errors import InputError
from relctl_core.spec import TranslationSpec

DEFAULT_MAX_NEW_TOKENS = 64
# Rows decoded together: translation.batch_size's default, for callers outside a stage (benchmarks).
DEFAULT_BATCH_SIZE: int = TranslationSpec.model_fields["batch_size"].default

T = TypeVar("T")


def max_new_tokens(source_tokens: int, cap: int = DEFAULT_MAX_NEW_TOKENS) -> int:
    """The most tokens an English rendering of a source of `source_tokens` tokens may take.

    Translations of search queries are about as long as their source, English often shorter than
    CJK or Arabic in tokens; twice the source plus a little slack stops a model that loops early
    without cutting a real answer.
    """
    return max(1, min(cap, 2 * source_tokens + 8))


def pick_device(requested: str | None = None) -> str:
    """`requested` if given, else the first CUDA device when there is one, else the CPU (all cores)."""
    import torch

    if requested:
        return requested
    if torch.cuda.is_available():
        return "cuda"
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    return "cpu"


def batch_or_each(run: Callable[[Sequence[T]], list[str | None]], rows: Sequence[T]) -> list[str | None]:
    """`run(rows)`; if that raises, each row alone, None for a row that raises by itself: one bad row must not
    sink its batch, and translate never raises for a row."""
    try:
        return run(rows)
    except Exception:  # noqa: BLE001
        if len(rows) == 1:
            return [None]
    out: list[str | None] = []
    for row in rows:
        try:
            out += run([row])
        except Exception:  # noqa: BLE001
            out.append(None)
    return out


def load_failure(backend: str, model_path: str, error: BaseException) -> InputError:
    """The clear error for a translation model that cannot load, naming it and the first line of why."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    return InputError(f"cannot load the {backend} translation model {model_path}: {reason}", path="translation.model")
