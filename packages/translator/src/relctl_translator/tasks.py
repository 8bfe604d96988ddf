"""The translate stage: English for every query of a dataset, served from and added to the shared cache."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from celery import shared_task
from relctl_core import names
from relctl_core.data import read_examples
from relctl_core.payloads import TranslatePayload
from relctl_core.pipeline import StageContext, execute_stage, write_json
from relctl_core.stages import stable_hash

from relctl_translator import __version__
from relctl_translator.backends import make_backend
from relctl_translator.quality import reference_quality
from relctl_translator.translate import translate_queries


def translate_dataset(ctx: StageContext) -> dict[str, Any]:
    payload = TranslatePayload.model_validate(ctx.config)
    dataset = ctx.input("ingest")
    examples = read_examples(ctx.path(dataset["artifacts"]["train"]))
    if "test" in dataset["artifacts"]:
        examples += read_examples(ctx.path(dataset["artifacts"]["test"]))
    batch_size = payload.batch_size
    loading = time.monotonic()
    file = payload.file.model_dump() if payload.file else None
    backend = make_backend(payload.backend, payload.model, file, settings=ctx.settings, batch_size=batch_size)
    if payload.backend not in ("identity", "file"):
        ctx.log(f"loaded {backend.name} model {backend.model} in {time.monotonic() - loading:.1f}s")

    def progress_of(what: str) -> Callable[[int, int], None]:
        started = time.monotonic()

        def report(done: int, total: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-9)
            ctx.progress({"done": done, "total": total, "rate": round(rate, 2), "unit": what})

        return report

    english, summary = translate_queries(
        ctx.settings.database_url,
        backend,
        [e.query for e in examples],
        [e.language for e in examples],
        batch_size=batch_size,
        on_progress=progress_of("queries"),
    )
    table_file = ctx.work_dir / "english.json"
    write_json(table_file, english)
    failures = ", ".join(f"{lang} {n}" for lang, n in summary.failed_by_language.items())
    ctx.log(
        f"translated {summary.translated} new queries with {backend.name}, {summary.cached} from the cache, "
        f"{summary.english_passthrough} already English, {summary.failed} failed (kept as written"
        + (f": {failures})" if failures else ")")
    )
    output: dict[str, Any] = {
        "hash": stable_hash(english),
        "artifacts": {"english": ctx.relative(table_file)},
        "summary": asdict(summary),
    }
    if payload.backend != "file":  # a user's file holds their own queries, not the reference set's
        quality = reference_quality(
            ctx.settings.database_url, backend, batch_size=batch_size, on_progress=progress_of("reference queries")
        )
        output["quality"] = quality
        output["metrics"] = [
            {"name": "translation.chrf", "language": language, "value": q["chrf"], "n": q["rows"]}
            for language, q in quality.items()
        ]
        ctx.log("chrF on the reference set: " + ", ".join(f"{lang} {q['chrf']:.1f}" for lang, q in quality.items()))
    return output


@shared_task(name=names.TRANSLATE, bind=True)
def translate(self: Any, stage_id: int, gpu: str = "cpu") -> str:
    return execute_stage(stage_id, translate_dataset, version=__version__, task_id=self.request.id)
