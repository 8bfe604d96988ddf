"""Metrics of a fold assignment: fold sizes, label and language balance, and query / category-group leakage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from relctl_core.data import category_group

from relctl_splitter.folds import TASKS


def audit_split(
    *,
    task: str,
    queries: Sequence[str],
    targets: Sequence[str],
    labels: Sequence[int],
    languages: Sequence[str],
    folds: np.ndarray,
    category_depth: int,
) -> dict[str, Any]:
    """A JSON-serialisable report of a split, one entry per fold plus the means across folds.

    A fold's leakage is the share of its (validation) rows whose query, or for QC whose category
    group, also occurs in the other folds, which are its training rows. Group leakage is None for
    QI. Raises ValueError for an unknown task, inputs of unequal length, or a fold that has no rows.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    fold_of_row = np.asarray(folds, dtype=np.int64)
    n_rows = len(fold_of_row)
    if not len(queries) == len(targets) == len(labels) == len(languages) == n_rows:
        raise ValueError(
            f"queries, targets, labels, languages and folds must have equal lengths, got "
            f"{len(queries)}, {len(targets)}, {len(labels)}, {len(languages)}, {n_rows}"
        )
    if n_rows == 0 or fold_of_row.min() < 0:
        raise ValueError("folds must be a non-empty array of fold indices >= 0")
    n_folds = int(fold_of_row.max()) + 1
    fold_sizes = np.bincount(fold_of_row, minlength=n_folds)
    if (fold_sizes == 0).any():
        raise ValueError(f"fold(s) {np.flatnonzero(fold_sizes == 0).tolist()} have no rows")

    label_array = np.asarray(labels, dtype=np.int64)
    language_array = np.asarray(languages, dtype=object)
    query_leaks = _leaking_rows(queries, fold_of_row)
    group_leaks = None
    if task == "QC":
        group_leaks = _leaking_rows([category_group(path, category_depth) for path in targets], fold_of_row)

    per_fold = []
    for fold in range(n_folds):
        in_fold = fold_of_row == fold
        names, counts = np.unique(language_array[in_fold], return_counts=True)
        per_fold.append(
            {
                "fold": fold,
                "rows": int(fold_sizes[fold]),
                "positive_rate": float(label_array[in_fold].mean()),
                "languages": {str(name): int(count) for name, count in zip(names, counts, strict=True)},
                "query_leakage": float(query_leaks[in_fold].mean()),
                "group_leakage": None if group_leaks is None else float(group_leaks[in_fold].mean()),
            }
        )

    positive_rates = [entry["positive_rate"] for entry in per_fold]
    return {
        "n_folds": n_folds,
        "folds": per_fold,
        "query_leakage": float(np.mean([entry["query_leakage"] for entry in per_fold])),
        "group_leakage": (
            None if group_leaks is None else float(np.mean([entry["group_leakage"] for entry in per_fold]))
        ),
        "size_ratio": float(fold_sizes.max() / fold_sizes.min()),
        "positive_rate_spread": float(max(positive_rates) - min(positive_rates)),
    }


def _leaking_rows(keys: Sequence[str], fold_of_row: np.ndarray) -> np.ndarray:
    """Whether each row's key (query or category group) also occurs in a fold other than the row's own."""
    _, key_of_row = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    key_fold_pairs = np.unique(np.stack([key_of_row, fold_of_row], axis=1), axis=0)
    folds_per_key = np.bincount(key_fold_pairs[:, 0], minlength=int(key_of_row.max()) + 1)
    return folds_per_key[key_of_row] > 1
