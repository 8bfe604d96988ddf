"""Model inputs: the translation-augmentation template, row files, tokenized pairs and length-grouped batches."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from relctl_core.errors import InputError

QUERY_MODES = ("orig", "en", "orig+en")
# With task: both and routing prefix, one head serves both tasks and the query says which it is.
TASK_TAGS = {"QC": "category:", "QI": "item:"}

# Batches per shuffled chunk that is sorted by length: large enough that most batches hold rows of
# similar length (little padding), small enough that the batch order still varies between epochs.
CHUNK_BATCHES = 50


def build_query_text(q_orig: str, q_en: str | None, mode: str) -> str:
    """The query side of a pair under a translation-augmentation mode: ``orig``, ``en`` or ``orig+en``.

    A missing translation falls back to the original query, and ``orig+en`` does not repeat a query
    that its translation leaves unchanged (an English query).
    """
    if mode not in QUERY_MODES:
        raise ValueError(f"unknown query mode {mode!r}; expected one of {', '.join(QUERY_MODES)}")
    if mode == "orig" or q_en is None:
        return q_orig
    if mode == "en":
        return q_en
    if q_en.strip().casefold() == q_orig.strip().casefold():
        return q_orig
    return f"{q_orig} - {q_en}"


@dataclass(frozen=True)
class PairRow:
    """One (query, target) pair of a row file; ``label`` is None in unlabelled (test) files."""

    id: str | int
    language: str
    query_text: str
    target_text: str
    label: int | None
    task: str | None = None  # QC or QI, in the rows of a model trained for both tasks


def read_rows(path: str | Path, *, labelled: bool) -> list[PairRow]:
    """Read a JSON-lines row file; a bad row is an InputError naming the file and its line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError("row file not found", file=path) from None
    rows = []
    for line_no, line in enumerate(lines, start=1):
        if line.strip():
            rows.append(_parse_row(line, labelled=labelled, file=path, line=line_no))
    if not rows:
        raise InputError("row file has no rows", file=path)
    return rows


def _parse_row(text: str, *, labelled: bool, file: str | Path, line: int) -> PairRow:
    try:
        record: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=file, line=line) from None
    if not isinstance(record, dict):
        raise InputError("a row must be a JSON object", file=file, line=line)
    row_id = record.get("id")
    if isinstance(row_id, bool) or not isinstance(row_id, str | int):
        raise InputError("id must be a string or an integer", file=file, line=line)
    for field in ("language", "query_text", "target_text"):
        if not isinstance(record.get(field), str):
            raise InputError(f"{field} must be a string", file=file, line=line)
    label = record.get("label")
    if labelled and label not in (0, 1):
        raise InputError("label must be 0 or 1", file=file, line=line)
    if not labelled and label not in (None, 0, 1):
        raise InputError("label must be 0, 1 or absent", file=file, line=line)
    task = record.get("task")
    if task is not None and not isinstance(task, str):
        raise InputError("task must be a string", file=file, line=line)
    return PairRow(
        id=row_id,
        language=record["language"],
        query_text=record["query_text"],
        target_text=record["target_text"],
        label=None if label is None else int(label),
        task=task,
    )


@dataclass(frozen=True)
class EncodedPairs:
    """Token ids of tokenized pairs, unpadded, with what padding them needs.

    ``token_type_ids`` only where the tokenizer makes them (BERT-style vocabularies, not XLM-R's).
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    lengths: np.ndarray
    pad_token_id: int
    padding_side: str
    task_ids: np.ndarray | None = None  # which head scores each pair, in a model with one head per task

    def __len__(self) -> int:
        return len(self.input_ids)

    def routed(self, row_tasks: Sequence[str | None], tasks: Sequence[str]) -> EncodedPairs:
        """These pairs with the index, in ``tasks``, of each row's task (the head that scores it)."""
        unknown = sorted({str(task) for task in row_tasks if task not in tasks})
        if unknown:
            raise InputError(f"rows of tasks {', '.join(unknown)} for a model of tasks {', '.join(tasks)}", path="task")
        return replace(self, task_ids=np.array([tasks.index(task) for task in row_tasks], dtype=np.int64))


def encode_pairs(
    tokenizer: Any, queries: Sequence[str], targets: Sequence[str], max_length: int
) -> EncodedPairs:
    """Tokenize (query, target) pairs once, truncated to max_length; padding happens per batch."""
    encoding = tokenizer(list(queries), list(targets), truncation=True, max_length=max_length)
    input_ids = encoding["input_ids"]
    return EncodedPairs(
        input_ids=input_ids,
        token_type_ids=encoding.get("token_type_ids"),
        lengths=np.fromiter((len(ids) for ids in input_ids), dtype=np.int64, count=len(input_ids)),
        pad_token_id=tokenizer.pad_token_id,
        padding_side=tokenizer.padding_side,
    )


def pad_batch(pairs: EncodedPairs, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Pad the rows of one batch to the longest of them (dynamic padding)."""
    width = int(pairs.lengths[batch].max())
    input_ids = np.full((len(batch), width), pairs.pad_token_id, dtype=np.int64)
    attention_mask = np.zeros((len(batch), width), dtype=np.int64)
    token_type_ids = None if pairs.token_type_ids is None else np.zeros((len(batch), width), dtype=np.int64)
    for slot, row in enumerate(batch):
        ids = pairs.input_ids[row]
        cols = slice(0, len(ids)) if pairs.padding_side == "right" else slice(width - len(ids), width)
        input_ids[slot, cols] = ids
        attention_mask[slot, cols] = 1
        if token_type_ids is not None:
            token_type_ids[slot, cols] = pairs.token_type_ids[row]
    arrays = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        arrays["token_type_ids"] = token_type_ids
    if pairs.task_ids is not None:
        arrays["task_ids"] = pairs.task_ids[batch]
    return arrays


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, *, groups: np.ndarray | None = None
) -> list[np.ndarray]:
    """Training batches: rows shuffled, sorted by length within chunks, then the batches shuffled.

    With ``groups`` (each row's task, for layers private to a task), rows are sorted by group first, so
    that a chunk's batches hold one task each, but for one batch where the groups meet.
    """
    order = rng.permutation(len(lengths))
    chunk = batch_size * CHUNK_BATCHES
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[_by_length(lengths[part], None if groups is None else groups[part])]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def scoring_batches(lengths: np.ndarray, batch_size: int, *, groups: np.ndarray | None = None) -> list[np.ndarray]:
    """Scoring batches: all rows sorted by length (within each of ``groups``), so that padding is minimal."""
    order = _by_length(lengths, groups)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _by_length(lengths: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Positions sorted longest first, within groups when given; stable."""
    if groups is None:
        return np.argsort(-lengths, kind="stable")
    return np.lexsort((-lengths, groups))
