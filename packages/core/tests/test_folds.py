"""A fold's rows as the train and baseline stages read them, with and without a holdout fold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relctl_core.data import Example, write_examples
from relctl_core.errors import RelctlError
from relctl_core.folds import load_fold, split_rows

FOLDS = 4


def examples(count: int = 40) -> list[Example]:
    return [Example(f"r{i}", ("en", "de")[i % 2], f"query {i // 3}", f"target {i}", i % 2, i + 1) for i in range(count)]


def fold_of(rows: list[Example]) -> dict[str, int]:
    # Query-grouped, as a category-aware split keeps a query's rows in one fold.
    return {e.id: int(e.query.split()[1]) % FOLDS for e in rows}


class StubContext:
    """What load_fold reads of a stage: its config, its ingest and split inputs and their files."""

    def __init__(self, root: Path, config: dict[str, Any], rows: list[Example], folds: dict[str, int], test: list[Example]) -> None:
        self.root, self.config = root, config
        write_examples(root / "train.jsonl", rows)
        write_examples(root / "test.jsonl", test)
        (root / "folds.json").write_text(json.dumps(folds))

    def input(self, kind: str, task: str | None = None) -> dict[str, Any]:
        return {"ingest": {"artifacts": {"train": "train.jsonl", "test": "test.jsonl"}}, "split": {"artifacts": {"folds": "folds.json"}}}[kind]

    def inputs(self, kind: str, task: str | None = None) -> list[dict[str, Any]]:
        return []  # no translation

    def path(self, relative: str) -> Path:
        return self.root / relative


def test_without_a_holdout_every_other_fold_trains_and_none_is_held_out() -> None:
    rows = examples()
    folds = fold_of(rows)
    train, val, held = split_rows(rows, folds, 1)
    assert held == []
    assert {e.id for e in val} == {i for i, f in folds.items() if f == 1}
    assert {e.id for e in train} == {i for i, f in folds.items() if f != 1}


@pytest.mark.parametrize("fold", [0, 1, 3])
def test_no_training_or_validation_row_is_a_holdout_row_and_the_holdout_is_the_whole_fold(fold: int) -> None:
    rows = examples()
    folds = fold_of(rows)
    train, val, held = split_rows(rows, folds, fold, holdout=2)
    train_ids, val_ids, held_ids = ({e.id for e in part} for part in (train, val, held))
    assert held_ids == {i for i, f in folds.items() if f == 2}
    assert val_ids == {i for i, f in folds.items() if f == fold}
    assert not held_ids & train_ids and not held_ids & val_ids and not train_ids & val_ids
    assert train_ids | val_ids | held_ids == set(folds)
    assert {folds[i] for i in train_ids} == set(range(FOLDS)) - {fold, 2}
    # No query of the holdout is seen in training either (the split keeps a query in one fold).
    assert not {e.query for e in held} & {e.query for e in train}


def test_the_holdout_fold_has_no_fold_model() -> None:
    rows = examples()
    with pytest.raises(RelctlError, match="fold 2 is the holdout fold"):
        split_rows(rows, fold_of(rows), 2, holdout=2)


def test_load_fold_takes_the_holdout_fold_from_the_stage_config(tmp_path: Path) -> None:
    rows, test = examples(), examples(5)  # the test file's ids may repeat the training rows': they are apart
    folds = fold_of(rows)
    plain = load_fold(StubContext(tmp_path, {"task": "QC", "fold": 0}, rows, folds, test), 0)
    held = load_fold(StubContext(tmp_path, {"task": "QC", "fold": 0, "holdout_fold": 3}, rows, folds, test), 0)
    assert plain.holdout == [] and len(plain.train) + len(plain.val) == len(rows)
    assert held.val == plain.val and held.test == plain.test == test
    assert {e.id for e in held.holdout} == {i for i, f in folds.items() if f == 3}
    assert {e.id for e in held.train} == {e.id for e in plain.train} - {e.id for e in held.holdout}
    assert all(e.label is not None for e in held.holdout)  # labelled: the holdout is a test set that can be scored
