"""The translate stage: English for every query of a dataset, served from and added to the shared cache."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from celery import shared_task
from relctl_core import names
from relctl_core.data import read_examples
from relctl_core.pipeline import StageContext, execute_stage, write_json
from relctl_core.stages import stable_hash

from relctl_translator import __version__
from relctl_translator.backends import make_backend
from relctl_translator.translate import translate_queries


def translate_dataset(ctx: StageContext) -> dict[str, Any]:
    cfg = ctx.config
    dataset = ctx.input("ingest")
    examples = read_examples(ctx.path(dataset["artifacts"]["train"]))
    if "test" in dataset["artifacts"]:
        examples += read_examples(ctx.path(dataset["artifacts"]["test"]))
    backend = make_backend(cfg["backend"], cfg.get("model"), cfg.get("file"))
    started = time.monotonic()

    def on_progress(done: int, total: int) -> None:
        rate = done / max(time.monotonic() - started, 1e-9)
        ctx.progress({"done": done, "total": total, "rate": round(rate, 1), "unit": "queries"})

    english, summary = translate_queries(
        ctx.settings.database_url,
        backend,
        [e.query for e in examples],
        [e.language for e in examples],
        on_progress=on_progress,
    )
    table_file = ctx.work_dir / "english.json"
    write_json(table_file, english)
    ctx.log(
        f"translated {summary.translated} new queries with {backend.name}, {summary.cached} from the cache, "
        f"{summary.english_passthrough} already English, {summary.failed} failed (kept as written)"
    )
    return {"hash": stable_hash(english), "artifacts": {"english": ctx.relative(table_file)}, "summary": asdict(summary)}


@shared_task(name=names.TRANSLATE, bind=True)
def translate(self: Any, stage_id: int, gpu: str = "cpu") -> str:
    return execute_stage(stage_id, translate_dataset, version=__version__, task_id=self.request.id)
