"""Core's own stage: ingest (load, validate, clean, sample) a task's data into a content-hashed dataset."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import shared_task
from sqlalchemy import select

from relctl_core import __version__, names
from relctl_core.data import (
    clean_examples,
    dataset_hash,
    load_examples,
    sample_examples,
    summarize,
    write_examples,
)
from relctl_core.db import Dataset, session_scope
from relctl_core.payloads import IngestPayload
from relctl_core.pipeline import StageContext, execute_stage
from relctl_core.stages import stable_hash


def ingest_dataset(ctx: StageContext) -> dict[str, Any]:
    payload = IngestPayload.model_validate(ctx.config)
    task, cleaning = payload.task, payload.cleaning.model_dump()
    train_path = payload.train.path
    train = load_examples(train_path, task, require_label=True)
    train, report = clean_examples(train, source=train_path, **cleaning)
    if payload.max_rows:
        train = sample_examples(train, payload.max_rows, payload.sample_seed)
    train_file = ctx.work_dir / "train.jsonl"
    write_examples(train_file, train)
    artifacts = {"train": ctx.relative(train_file)}
    train_hash = dataset_hash(train)
    test_hash = None
    test_rows = 0
    if payload.test:
        test_path = payload.test.path
        test = load_examples(test_path, task, require_label=False)
        test, _ = clean_examples(test, source=test_path, **{**cleaning, "drop_empty": False})
        test_file = ctx.work_dir / "test.jsonl"
        write_examples(test_file, test)
        artifacts["test"] = ctx.relative(test_file)
        test_hash = dataset_hash(test)
        test_rows = len(test)
    summary = summarize(train)
    with session_scope(ctx.settings.database_url) as session:
        if session.scalar(select(Dataset.id).where(Dataset.content_hash == train_hash)) is None:
            session.add(
                Dataset(
                    content_hash=train_hash,
                    task=task,
                    rows=len(train),
                    summary=summary,
                    sources={"train": payload.train.model_dump(), "test": payload.test.model_dump() if payload.test else None},
                    artifact_path=artifacts["train"],
                )
            )
    ctx.log(f"ingested {len(train)} {task} rows ({report.dropped_empty} empty queries dropped), {test_rows} test rows")
    return {
        "hash": stable_hash([train_hash, test_hash]),
        "dataset_hash": train_hash,
        "artifacts": artifacts,
        "summary": summary,
        "cleaning": asdict(report),
        "test_rows": test_rows,
    }


@shared_task(name=names.INGEST, bind=True)
def ingest(self: Any, stage_id: int, gpu: str = "cpu") -> str:
    return execute_stage(stage_id, ingest_dataset, version=__version__, task_id=self.request.id)
