"""The translate stage: English for every query of a dataset, served from and added to the shared cache; and
the same for the queries of a request outside any stage (`relctl predict` on a run that reads translations)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from celery import shared_task
from relctl_core import names
from relctl_core.data import file_sha256, read_examples
from relctl_core.errors import InputError
from relctl_core.liveness import host_name
from relctl_core.payloads import TranslatePayload, TranslationRequest
from relctl_core.pipeline import StageContext, execute_stage, write_json
from relctl_core.settings import Settings, load_settings
from relctl_core.stages import stable_hash
from relctl_core.translation_requests import error_answer, reply_files

from relctl_translator import __version__
from relctl_translator.backends import Backend, cache_model, make_backend
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
        # Where the translations are in the cache: `relctl predict` looks the run's up there.
        "cache": {"backend": backend.name, "model": backend.model},
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


class _LoadedWhenNeeded:
    """A backend that loads its model on the first text it has to translate: a request the cache answers
    whole costs no model load."""

    def __init__(self, name: str, model: str, load: Callable[[], Backend]) -> None:
        self.name, self.model, self._load = name, model, load
        self._backend: Backend | None = None

    def translate(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
        if self._backend is None:
            self._backend = self._load()
        return self._backend.translate(texts, languages)


def answer_request(settings: Settings, request: TranslationRequest, on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """English for a request's texts, by the translator of its translate stage's config, through the cache."""
    config = request.translation
    file = config.file.model_dump() if config.file else None
    if file is not None and file_sha256(file["path"]) != file["sha256"]:
        raise InputError(
            "changed since the run's translate stage read it: its translations would not be the run's (restore it, or train again)",
            file=file["path"],
            path="translation.path",
        )
    key = cache_model(config.backend, config.model, file, settings=settings)
    if request.expect_model is not None and key != request.expect_model:
        raise InputError(
            f"the run's translator is not the one it was trained with: its translate stage stored translations as "
            f"{config.backend} {request.expect_model!r}, and the same settings give {key!r} here (a model changed or "
            "reinstalled, or another relctl-translator); its translations would not be the run's",
            path="translation.model",
        )
    backend = _LoadedWhenNeeded(
        config.backend, key, lambda: make_backend(config.backend, config.model, file, settings=settings, batch_size=config.batch_size)
    )
    english, summary = translate_queries(
        settings.database_url, backend, request.texts, request.languages, batch_size=config.batch_size, on_progress=on_progress
    )
    return {"english": english, "backend": config.backend, "model": key, "summary": asdict(summary)}


@shared_task(name=names.TRANSLATE_TEXTS)
def translate_texts(request: dict[str, Any]) -> dict[str, Any]:
    """English for a request's queries (relctl_core.translation_requests): returned, and written where the
    request says when it came through a broker. A failure is answered too, never left to a log."""
    settings = load_settings()
    reply = request.get("reply") if isinstance(request, dict) else None
    progress_file = reply_files(settings, reply)[1] if isinstance(reply, str) else None

    def report(done: int, total: int) -> None:
        if progress_file is not None:
            progress_file.parent.mkdir(parents=True, exist_ok=True)
            write_json(progress_file, {"done": done, "total": total, "host": host_name()})

    try:
        parsed = TranslationRequest.model_validate(request)
        report(0, len(set(parsed.texts)))
        answer = answer_request(settings, parsed, on_progress=report)
    except Exception as exc:  # noqa: BLE001 - the caller waits for an answer, whatever happened
        answer = error_answer(exc)
    if isinstance(reply, str):
        answer_file = reply_files(settings, reply)[0]
        answer_file.parent.mkdir(parents=True, exist_ok=True)
        write_json(answer_file, answer)
    return answer
