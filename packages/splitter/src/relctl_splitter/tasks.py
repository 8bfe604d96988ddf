"""The split stage: assign every row of a dataset to a fold and record the split's balance and leakage."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from relctl_core import names
from relctl_core.data import read_examples
from relctl_core.pipeline import StageContext, execute_stage, write_json
from relctl_core.stages import stable_hash

from relctl_splitter import __version__
from relctl_splitter.audit import audit_split
from relctl_splitter.folds import assign_folds


def split_dataset(ctx: StageContext) -> dict[str, Any]:
    cfg = ctx.config
    examples = read_examples(ctx.path(ctx.input("ingest")["artifacts"]["train"]))
    columns = {
        "queries": [e.query for e in examples],
        "targets": [e.target for e in examples],
        "labels": [int(e.label or 0) for e in examples],
        "languages": [e.language for e in examples],
    }
    folds = assign_folds(
        task=cfg["task"], strategy=cfg["strategy"], n_folds=cfg["folds"], category_depth=cfg["category_depth"], seed=cfg["seed"], **columns
    )
    audit = audit_split(task=cfg["task"], folds=folds, category_depth=cfg["category_depth"], **columns)
    fold_of_row = {e.id: int(f) for e, f in zip(examples, folds, strict=True)}
    folds_file = ctx.work_dir / "folds.json"
    write_json(folds_file, fold_of_row)
    write_json(ctx.work_dir / "audit.json", audit)
    metrics = [{"name": "split.query_leakage", "value": audit["query_leakage"]}, {"name": "split.size_ratio", "value": audit["size_ratio"]}]
    if audit.get("group_leakage") is not None:
        metrics.append({"name": "split.group_leakage", "value": audit["group_leakage"]})
    for fold in audit["folds"]:
        metrics.append({"name": "split.rows", "fold": fold["fold"], "value": fold["rows"]})
        metrics.append({"name": "split.positive_rate", "fold": fold["fold"], "value": fold["positive_rate"]})
        metrics.append({"name": "split.query_leakage", "fold": fold["fold"], "value": fold["query_leakage"]})
        if fold.get("group_leakage") is not None:
            metrics.append({"name": "split.group_leakage", "fold": fold["fold"], "value": fold["group_leakage"]})
    ctx.log(
        f"{cfg['strategy']} split into {cfg['folds']} folds: sizes {[f['rows'] for f in audit['folds']]}, "
        f"query leakage {audit['query_leakage']:.3f}, group leakage {audit.get('group_leakage')}"
    )
    return {
        "hash": stable_hash(fold_of_row),
        "artifacts": {"folds": ctx.relative(folds_file)},
        "audit": audit,
        "metrics": metrics,
    }


@shared_task(name=names.SPLIT, bind=True)
def split(self: Any, stage_id: int, gpu: str = "cpu") -> str:
    return execute_stage(stage_id, split_dataset, version=__version__, task_id=self.request.id)
