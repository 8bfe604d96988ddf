"""Inference with trained fold models: the ensemble's mean relevance probability for (query, target) rows."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from relctl_core.errors import InputError

from relctl_trainer.inputs import EncodedPairs, encode_pairs
from relctl_trainer.metrics import sigmoid
from relctl_trainer.modeling import choose_placement, load_relevance_model, load_tokenizer, score_pairs


def predict_probs(
    model_dirs: list[str], rows: list[dict], *, batch_size: int = 64, max_length: int | None = None
) -> np.ndarray:
    """Mean probability of relevance over the fold models, one per row, in row order.

    Each model_dir is the ``model/`` folder a training run wrote; rows carry ``query_text`` and
    ``target_text`` (and ``task``, QC or QI, for a model with one head per task). Without max_length, each model truncates as it was trained.
    """
    if not model_dirs:
        raise InputError("no model folders to predict with")
    queries, targets = _pair_texts(rows)
    if not rows:
        return np.empty(0, dtype=np.float64)
    placement = choose_placement("auto")
    # Folds of one run share a backbone, so the rows are tokenized once for all of them.
    encoded: dict[tuple[str, int], EncodedPairs] = {}
    total = np.zeros(len(rows), dtype=np.float64)
    for model_dir in model_dirs:
        model, card = load_relevance_model(Path(model_dir), placement)
        length = max_length or card.max_length
        key = (card.base_model_path, length)
        if key not in encoded:
            encoded[key] = encode_pairs(load_tokenizer(card.base_model_path), queries, targets, length)
        pairs = encoded[key].routed([row.get("task") for row in rows], card.tasks) if card.tasks else encoded[key]
        total += sigmoid(score_pairs(model, pairs, placement, batch_size=batch_size))
        del model
    return total / len(model_dirs)


def _pair_texts(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    queries, targets = [], []
    for index, row in enumerate(rows):
        for field, texts in (("query_text", queries), ("target_text", targets)):
            text = row.get(field)
            if not isinstance(text, str):
                raise InputError("must be a string", path=f"rows[{index}].{field}")
            texts.append(text)
    return queries, targets


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Loading and running models without what the libraries print for their own developers: transformers'
    load reports (a BERT backbone's pooler weights reported MISSING: the head pools tokens itself and never
    uses them), its progress bars, and deprecation warnings (FutureWarning) from inside transformers, peft
    and torch. Errors still show; the settings are restored on the way out."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"(transformers|peft|torch)(\.|$)")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
