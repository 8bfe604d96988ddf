"""The translation cache's key: what names a backend's output, the same for the translate stage and for predict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relctl_core.errors import InputError
from relctl_core.migrate import ensure_schema
from relctl_core.modelstore import INFO_FILE
from relctl_core.settings import load_settings
from relctl_core.stages import stable_hash
from relctl_core.translation_cache import lookup, model_identity, model_key, stage_model_key, store


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings({"RELCTL_HOME": str(tmp_path / "home"), "RELCTL_MODEL_STORE": str(tmp_path / "store")})


def model_folder(path: Path, weights: bytes = b"\0" * 10) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "gemma3_text"}))
    (path / "model.safetensors").write_bytes(weights)
    return path


def test_each_backend_names_its_output(tmp_path: Path, settings) -> None:
    assert model_key("identity", None, None) == ""
    assert model_key("file", None, {"path": "/data/translations.tsv", "sha256": "ab" * 32}) == "translations.tsv@" + "ab" * 6
    assert model_key("apertium", None, None) == "apertium:spa-eng"
    folder = model_folder(tmp_path / "tiny-mt")
    assert model_key("seq2seq", str(folder), None, settings=settings) == model_identity(str(folder), str(folder))
    assert model_key("seq2seq", "google/madlad400-3b-mt", None, settings=settings) == "google/madlad400-3b-mt"  # a hub id as it is


def test_a_causal_lm_key_holds_its_model_files_and_its_prompt(tmp_path: Path, settings) -> None:
    folder = model_folder(tmp_path / "tiny-lm")
    prompt = "Translate.\n"
    key = model_key("causal-lm", str(folder), None, settings=settings, prompt=prompt)
    assert key == f"{model_identity(str(folder), str(folder))}|prompt@{stable_hash(prompt)[:8]}"
    assert key.startswith("tiny-lm@")
    assert model_key("causal-lm", str(folder), None, settings=settings, prompt="Translate!\n") != key
    (folder / "model.safetensors").write_bytes(b"\0" * 11)  # other weights: other translations
    assert model_key("causal-lm", str(folder), None, settings=settings, prompt="Translate.\n") != key
    with pytest.raises(ValueError, match="prompt"):
        model_key("causal-lm", str(folder), None, settings=settings)


def test_a_store_model_is_named_by_its_recorded_weights(settings) -> None:
    folder = model_folder(settings.model_store / "gemma-3-270m")
    (folder / INFO_FILE).write_text(json.dumps({"weights_sha256": "0123456789abcdef" * 4}))
    assert model_key("causal-lm", None, None, settings=settings, prompt="p").startswith("gemma-3-270m@0123456789ab|prompt@")


def test_bad_settings_are_named() -> None:
    with pytest.raises(InputError, match="translation.path"):
        model_key("file", None, None)
    with pytest.raises(InputError, match="translation.backend: unknown translation backend 'babel'"):
        model_key("babel", None, None)


def test_a_stage_is_looked_up_where_it_stored(tmp_path: Path, settings) -> None:
    file = {"path": str(tmp_path / "t.tsv"), "sha256": "cd" * 32}
    recorded = {"cache": {"backend": "file", "model": "t.tsv@recorded"}}
    assert stage_model_key(recorded, "file", None, file, settings) == "t.tsv@recorded"
    # A stage of an older relctl recorded nothing: its settings give the key, where no translator is needed for it.
    assert stage_model_key({}, "file", None, file, settings) == model_key("file", None, file)
    assert stage_model_key({}, "apertium", None, None, settings) == "apertium:spa-eng"
    assert stage_model_key({}, "causal-lm", None, None, settings) is None  # its key holds the translator's prompt
    assert stage_model_key({}, "seq2seq", "google/madlad400-3b-mt", None, settings) == "google/madlad400-3b-mt"
    assert stage_model_key({}, "seq2seq", "gemma-3-270m", None, settings) is None  # a store model this host lacks


def test_lookup_finds_only_the_same_backend_and_model(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    ensure_schema(url)
    store(url, "file", "t.tsv@1", {"zapatos": ("shoes", "es")})
    assert lookup(url, "file", "t.tsv@1", ["zapatos", "bolso"]) == {"zapatos": "shoes"}
    assert lookup(url, "file", "t.tsv@2", ["zapatos"]) == {}
    assert lookup(url, "causal-lm", "t.tsv@1", ["zapatos"]) == {}
