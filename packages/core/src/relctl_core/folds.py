"""The rows of one cross-validation fold, as the train and baseline stages see them, and the holdout
rows kept out of cross-validation."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relctl_core.data import Example, read_examples
from relctl_core.errors import RelctlError
from relctl_core.pipeline import StageContext, load_json


@dataclass
class FoldData:
    fold: int
    train: list[Example]
    val: list[Example]
    test: list[Example]
    english: dict[str, str] | None  # query -> English, when the experiment translates
    # The holdout fold's labelled rows (split.holdout_fold): neither train nor val rows, predicted once trained.
    holdout: list[Example] = field(default_factory=list)

    def english_of(self, query: str) -> str | None:
        return None if self.english is None else self.english.get(query)


def load_fold(ctx: StageContext, fold: int, task: str | None = None) -> FoldData:
    """Fold ``fold`` of one task's data: the stage's own task by default (a TAPT stage also depends on
    the other task's data, a model for both tasks on both). Where the stage's config names a
    ``holdout_fold``, that fold's rows are the holdout rows, never training or validation rows."""
    task = task or ctx.config["task"]
    dataset = ctx.input("ingest", task)
    examples = read_examples(ctx.path(dataset["artifacts"]["train"]))
    test = read_examples(ctx.path(dataset["artifacts"]["test"])) if "test" in dataset["artifacts"] else []
    fold_of_row: dict[str, int] = load_json(ctx.path(ctx.input("split", task)["artifacts"]["folds"]))
    train, val, holdout = split_rows(examples, fold_of_row, fold, ctx.config.get("holdout_fold"))
    return FoldData(fold=fold, train=train, val=val, test=test, english=english_for(ctx, task), holdout=holdout)


def split_rows(
    examples: list[Example], fold_of_row: dict[str, int], fold: int, holdout: int | None = None
) -> tuple[list[Example], list[Example], list[Example]]:
    """(train, val, holdout) rows of fold ``fold``: val is the fold's rows, holdout the holdout fold's
    (none without one), train every other row."""
    if holdout is not None and holdout == fold:
        raise RelctlError(f"fold {fold} is the holdout fold: it has no fold model")
    train, val, held = [], [], []
    for example in examples:
        row_fold = fold_of_row[example.id]
        (val if row_fold == fold else held if row_fold == holdout else train).append(example)
    return train, val, held


def english_for(ctx: StageContext, task: str) -> dict[str, str] | None:
    """query -> English of one task's data, when the experiment translates."""
    translations = ctx.inputs("translate", task)
    return load_json(ctx.path(translations[0]["artifacts"]["english"])) if translations else None


def write_predictions(path: Path, examples: Iterable[Example], probs: Iterable[float], *, with_label: bool) -> None:
    """Predictions as JSON lines: id, language, (label,) prob — the format evaluate and predict read."""
    rows = []
    for example, prob in zip(examples, probs, strict=True):
        row: dict[str, Any] = {"id": example.id, "language": example.language, "prob": float(prob)}
        if with_label:
            row["label"] = example.label
        rows.append(row)
    write_prediction_rows(path, rows)


def write_prediction_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_predictions(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as rows:
        return [json.loads(line) for line in rows if line.strip()]
