"""What every neural backend shares: how long an answer may be, and which device and threads to use."""

from __future__ import annotations

import os

DEFAULT_MAX_NEW_TOKENS = 64


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
