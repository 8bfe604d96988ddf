"""English for some queries outside any stage, by a run's own translator (`relctl predict`).

The translator is reached through its Celery task by name (names.TRANSLATE_TEXTS), so that no package
imports it: with the embedded default the task runs in this process, as `relctl run` runs every stage
here; with a broker the request goes to the translate queue, as the translate stages do, and the worker
that takes it writes its answer into the artifact root (shared by every host, as the stages' artifacts
are), where the caller waits for it. The broker carries no results.

Either way the answer is the same JSON object: ``english`` (query -> English for every query asked,
English ones and those the backend failed on as written, as the translate stage's table has them),
``backend`` and ``model`` (the cache key the translations are stored under) and ``summary``; or
``error`` and ``exit_code`` when the request was refused or failed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relctl_core import names
from relctl_core.errors import InputError, RelctlError
from relctl_core.payloads import TranslatePayload, TranslationRequest
from relctl_core.settings import Settings

REPLIES = "translate-requests"  # under the artifact root: answers (and progress) of requests sent to workers
POLL_SECONDS = 0.5
HINT_AFTER_SECONDS = 30.0  # a request no worker has taken by then gets a hint about workers


@dataclass(frozen=True)
class Translated:
    english: dict[str, str]
    backend: str
    model: str
    summary: dict[str, Any]


class TranslationFailed(RelctlError):
    """The translator could not answer a request (not bad input: a backend that broke, a lost worker)."""


def reply_files(settings: Settings, reply: str) -> tuple[Path, Path]:
    """(answer, progress) files of a request whose reply is ``reply`` (relative to the artifact root, in REPLIES)."""
    parts = Path(reply).parts
    if len(parts) != 2 or parts[0] != REPLIES or not parts[1].endswith(".json"):
        raise ValueError(f"a reply is {REPLIES}/NAME.json, not {reply!r}")
    answer = settings.artifact_root / reply
    return answer, answer.with_name(answer.stem + ".progress.json")


def error_answer(exc: BaseException) -> dict[str, Any]:
    """The answer that reports ``exc``: relctl's own errors as they are, anything else with its type."""
    if isinstance(exc, RelctlError):
        return {"error": str(exc), "exit_code": exc.exit_code}
    return {"error": f"{type(exc).__name__}: {exc}", "exit_code": 1}


def answer_of(answer: dict[str, Any]) -> Translated:
    """The translations of an answer; an error answer raises what it reports (InputError: exit status 2)."""
    if "error" in answer:
        if answer.get("exit_code") == InputError.exit_code:
            raise InputError(str(answer["error"]))
        raise TranslationFailed(f"the translator failed: {answer['error']}")
    return Translated(english=dict(answer["english"]), backend=answer["backend"], model=answer["model"], summary=dict(answer["summary"]))


def request_translations(
    settings: Settings,
    translation: TranslatePayload,
    texts: Sequence[str],
    languages: Sequence[str],
    *,
    expect_model: str | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Translated:
    """English for ``texts`` (with their ``languages``) by the translator of a translate stage's config,
    through the shared cache (what it holds is not translated again; what is translated is added to it).

    ``expect_model`` is the cache key the stage stored its translations under: a translator that would
    store them under another one now (the model reinstalled, the file edited) is refused as bad input, as
    its translations would not be the run's. ``say`` gets progress lines meant for a person."""
    request = TranslationRequest(translation=translation, texts=list(texts), languages=list(languages), expect_model=expect_model)
    if settings.embedded_broker:
        return _here(request, say)
    return _on_a_worker(settings, request, say)


def _translate_task() -> Any:
    from relctl_core.celery_app import get_app

    app = get_app()
    app.loader.import_default_modules()
    task = app.tasks.get(names.TRANSLATE_TEXTS)
    if task is None:
        raise InputError(
            "translating queries here needs the relctl-translator package (with the embedded default the translator runs in this "
            "process); install it, or set RELCTL_BROKER_URL to a broker whose translate workers have it",
            path="RELCTL_BROKER_URL",
        )
    return task


def _here(request: TranslationRequest, say: Callable[[str], None]) -> Translated:
    task = _translate_task()
    backend = request.translation.backend
    say(f"translating {len(request.texts)} queries here with the run's translator ({backend})")
    started = time.monotonic()
    result = answer_of(task(request.config()))
    say(f"translated them in {time.monotonic() - started:.1f} s ({_summary_text(result.summary)})")
    return result


def _on_a_worker(settings: Settings, request: TranslationRequest, say: Callable[[str], None]) -> Translated:
    from relctl_core.celery_app import get_app, route_for

    request_id = uuid.uuid4().hex
    reply = f"{REPLIES}/{request_id}.json"
    answer_file, progress_file = reply_files(settings, reply)
    answer_file.parent.mkdir(parents=True, exist_ok=True)
    queue = route_for(names.TRANSLATE_TEXTS)
    app = get_app()
    try:
        app.send_task(
            names.TRANSLATE_TEXTS,
            kwargs={"request": request.model_copy(update={"reply": reply}).config()},
            task_id=request_id,
            soft_time_limit=settings.stage_time_limit,
        )
    except Exception as exc:  # noqa: BLE001 - a broker that refuses the message is the caller's to fix
        from relctl_core.errors import first_line
        from relctl_core.settings import redact_url

        raise InputError(f"cannot send to the broker {redact_url(settings.broker_url)}: {first_line(exc)}", path="RELCTL_BROKER_URL") from None
    say(f"sent {len(request.texts)} queries to the {queue} queue for the run's translator ({request.translation.backend}); waiting for a worker")
    started = time.monotonic()
    hinted = False
    shown: Any = None
    try:
        while not answer_file.exists():
            progress = _read(progress_file)
            if progress is not None and progress != shown:
                shown = progress
                where = f" on {progress['host']}" if progress.get("host") else ""
                say(f"  {progress.get('done', 0)}/{progress.get('total', '?')} queries translated{where}")
            elif progress is None and not hinted and time.monotonic() - started > HINT_AFTER_SECONDS:
                hinted = True
                say(
                    f"  no worker has taken it yet: is one running for the {queue} queue (relctl worker --queues {queue}), with the "
                    f"artifact root this command has ({settings.artifact_root})? Ctrl-C stops waiting"
                )
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        app.control.revoke(request_id)
        raise
    answer = _read(answer_file)
    answer_file.unlink(missing_ok=True)
    progress_file.unlink(missing_ok=True)
    if answer is None:
        raise TranslationFailed(f"the translator's answer {answer_file} is not readable")
    result = answer_of(answer)
    say(f"translated them in {time.monotonic() - started:.1f} s ({_summary_text(result.summary)})")
    return result


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _summary_text(summary: dict[str, Any]) -> str:
    return (
        f"{summary.get('translated', 0)} translated, {summary.get('cached', 0)} from the cache, "
        f"{summary.get('english_passthrough', 0)} already English, {summary.get('failed', 0)} failed"
    )
