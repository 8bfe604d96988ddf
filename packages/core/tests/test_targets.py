"""The target side of a pair: a category path as given, or leaf first with its levels marked."""

from __future__ import annotations

from pathlib import Path

import pytest

from relctl_core.errors import InputError
from relctl_core.payloads import TrainPayload
from relctl_core.spec import load_spec
from relctl_core.targets import target_text


def test_leaf_first_puts_the_leaf_before_its_marked_parents() -> None:
    assert target_text("watches,watches accessories,watchbands", "QC", "leaf-first") == "watchbands (in: watches > watches accessories)"
    # A level name holding ", " stays one level.
    path = "automobiles, parts & accessories,exterior parts,locks & hardware"
    assert target_text(path, "QC", "leaf-first") == "locks & hardware (in: automobiles, parts & accessories > exterior parts)"
    assert target_text("watches", "QC", "leaf-first") == "watches"


def test_as_given_and_item_titles_are_left_alone() -> None:
    path = "watches,watches accessories,watchbands"
    assert target_text(path, "QC", None) == target_text(path, "QC", "as-given") == path
    title = "Shockproof Silicone Case For iPhone 13, Soft TPU Back Cover"
    assert target_text(title, "QI", "leaf-first") == title
    with pytest.raises(ValueError, match="unknown target form 'leaf'"):
        target_text(path, "QC", "leaf")


def spec_text(extra: str, task: str = "qc") -> str:
    data = "data:\n  qc: {train: qc.jsonl}\n  qi: {train: qc.jsonl}\n"
    return f"name: forms\ntask: {task}\n{data}{extra}"


def test_as_given_is_the_unset_setting_so_cached_stages_keep_their_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("qc.jsonl").write_text("", encoding="utf-8")
    configs = {}
    for name, extra in (("unset", ""), ("as-given", "model: {target_form: as-given}\n"), ("leaf-first", "model: {target_form: leaf-first}\n")):
        Path("experiment.yaml").write_text(spec_text(extra), encoding="utf-8")
        spec = load_spec("experiment.yaml").spec
        configs[name] = TrainPayload.model_fields["model"].annotation.model_validate(spec.model.model_dump()).model_dump()
        assert spec.model.target_form == (None if name != "leaf-first" else "leaf-first")
    assert configs["unset"] == configs["as-given"] != configs["leaf-first"]


def test_a_target_form_needs_category_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("qc.jsonl").write_text("", encoding="utf-8")
    Path("experiment.yaml").write_text(spec_text("model: {target_form: leaf-first}\n", task="qi"), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_spec("experiment.yaml")
    assert str(caught.value) == "experiment.yaml:6 model.target_form: leaf-first reads category paths: it needs task qc or both (task is qi)"
    Path("experiment.yaml").write_text(spec_text("model: {target_form: leaf}\n"), encoding="utf-8")
    with pytest.raises(InputError, match="model.target_form: must be one of: as-given, leaf-first$"):
        load_spec("experiment.yaml")
