"""Translation requests outside any stage (`relctl predict`): the run's translator, under the stage's cache key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from relctl_core.data import file_sha256
from relctl_core.errors import InputError
from relctl_core.migrate import ensure_schema
from relctl_core.payloads import DataFile, TranslatePayload, TranslationRequest
from relctl_core.settings import load_settings
from relctl_core.stages import stable_hash
from relctl_core.translation_cache import lookup, model_identity, model_key, store
from relctl_core.translation_requests import answer_of, reply_files

from relctl_translator.backends import cache_model, make_backend
from relctl_translator.causal_lm import prompt_prefix
from relctl_translator.tasks import answer_request, translate_texts
from relctl_translator.testing import build_tiny_causal_lm


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env = {"RELCTL_HOME": str(tmp_path / "home"), "RELCTL_DATABASE_URL": f"sqlite:///{tmp_path / 'runs.db'}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ensure_schema(env["RELCTL_DATABASE_URL"])
    return load_settings(env)


@pytest.fixture
def table(tmp_path: Path) -> DataFile:
    path = tmp_path / "translations.tsv"
    path.write_text("query\tenglish\nzapatos\tshoes\nbolso\tbag\n", encoding="utf-8")
    return DataFile(path=str(path), sha256=file_sha256(path))


def file_config(table: DataFile) -> TranslatePayload:
    return TranslatePayload(task="QC", backend="file", model=None, file=table, batch_size=8)


def test_the_backends_store_under_the_shared_key(tmp_path: Path, table: DataFile, settings) -> None:
    assert make_backend("file", None, table.model_dump()).model == model_key("file", None, table.model_dump())
    assert make_backend("identity", None, None).model == model_key("identity", None, None)
    folder = tmp_path / "tiny-lm"
    build_tiny_causal_lm(directory=folder)
    backend = make_backend("causal-lm", str(folder), None, settings=settings, batch_size=4)
    expected = f"{model_identity(str(folder), str(folder))}|prompt@{stable_hash(prompt_prefix())[:8]}"
    assert backend.model == cache_model("causal-lm", str(folder), None, settings=settings) == expected


def test_a_request_is_translated_by_the_stages_backend_and_cached(table: DataFile, settings) -> None:
    request = TranslationRequest(translation=file_config(table), texts=["zapatos", "bolso", "gorra"], languages=["es", "es", "es"])
    answer = answer_request(settings, request)
    key = model_key("file", None, table.model_dump())
    assert answer["model"] == key and answer["backend"] == "file"
    assert answer["english"] == {"zapatos": "shoes", "bolso": "bag", "gorra": "gorra"}  # a failure keeps its text
    assert (answer["summary"]["translated"], answer["summary"]["failed"]) == (2, 1)
    assert lookup(settings.database_url, "file", key, ["zapatos", "bolso", "gorra"]) == {"zapatos": "shoes", "bolso": "bag"}


def test_a_request_the_cache_answers_loads_no_model(tmp_path: Path, settings) -> None:
    folder = tmp_path / "broken-mt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "t5"}))  # no weights: loading it fails
    config = TranslatePayload(task="QC", backend="seq2seq", model=str(folder), file=None, batch_size=8)
    key = cache_model("seq2seq", str(folder), None, settings=settings)
    store(settings.database_url, "seq2seq", key, {"zapatos": ("shoes", "es")})
    answer = answer_request(settings, TranslationRequest(translation=config, texts=["zapatos"], languages=["es"], expect_model=key))
    assert answer["english"] == {"zapatos": "shoes"} and answer["summary"]["cached"] == 1
    with pytest.raises(InputError, match="cannot load the seq2seq translation model"):
        answer_request(settings, TranslationRequest(translation=config, texts=["bolso"], languages=["es"]))


def test_a_translator_other_than_the_runs_is_refused(table: DataFile, settings) -> None:
    request = TranslationRequest(translation=file_config(table), texts=["zapatos"], languages=["es"], expect_model="translations.tsv@000000000000")
    with pytest.raises(InputError) as refused:
        answer_request(settings, request)
    assert refused.value.path == "translation.model" and "not the one it was trained with" in str(refused.value)

    Path(table.path).write_text("query\tenglish\nzapatos\tshoe\n", encoding="utf-8")  # edited since the stage read it
    edited = TranslationRequest(translation=file_config(table), texts=["zapatos"], languages=["es"])
    with pytest.raises(InputError) as changed:
        answer_request(settings, edited)
    assert changed.value.file == table.path and "changed since the run's translate stage read it" in str(changed.value)


def test_the_task_answers_in_its_reply_file_errors_too(table: DataFile, settings) -> None:
    request = TranslationRequest(translation=file_config(table), texts=["zapatos"], languages=["es"], reply="translate-requests/r1.json")
    answer = translate_texts(request.config())
    answer_file, progress_file = reply_files(settings, "translate-requests/r1.json")
    assert json.loads(answer_file.read_text()) == answer
    assert answer_of(answer).english == {"zapatos": "shoes"}
    assert json.loads(progress_file.read_text())["total"] == 1

    refused = translate_texts({**request.config(), "expect_model": "other", "reply": "translate-requests/r2.json"})
    written = json.loads(reply_files(settings, "translate-requests/r2.json")[0].read_text())
    assert written == refused and refused["exit_code"] == 2 and "translation.model" in refused["error"]
    with pytest.raises(InputError, match="not the one it was trained with"):
        answer_of(refused)
    malformed = translate_texts({"texts": "zapatos"})
    assert malformed["exit_code"] == 1 and "validation error" in malformed["error"]
