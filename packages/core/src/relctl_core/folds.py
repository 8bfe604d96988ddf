"""The rows of one cross-validation fold, as the train and baseline stages see them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relctl_core.data import Example, read_examples
from relctl_core.pipeline import StageContext, load_json


@dataclass
class FoldData:
    fold: int
    train: list[Example]
    val: list[Example]
    test: list[Example]
    english: dict[str, str] | None  # query -> English, when the experiment translates

    def english_of(self, query: str) -> str | None:
        return None if self.english is None else self.english.get(query)


def load_fold(ctx: StageContext, fold: int, task: str | None = None) -> FoldData:
    """Fold ``fold`` of one task's data: the stage's own task by default (a TAPT stage also depends on
    the other task's data, a model for both tasks on both)."""
    task = task or ctx.config["task"]
    dataset = ctx.input("ingest", task)
    examples = read_examples(ctx.path(dataset["artifacts"]["train"]))
    test = read_examples(ctx.path(dataset["artifacts"]["test"])) if "test" in dataset["artifacts"] else []
    fold_of_row: dict[str, int] = load_json(ctx.path(ctx.input("split", task)["artifacts"]["folds"]))
    english = english_for(ctx, task)
    return FoldData(
        fold=fold,
        train=[e for e in examples if fold_of_row[e.id] != fold],
        val=[e for e in examples if fold_of_row[e.id] == fold],
        test=test,
        english=english,
    )


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
