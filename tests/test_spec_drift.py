"""The stage payloads and the trainer's job hold to the spec: one type and one set of bounds per setting.

A payload or job field is a spec section itself, a copy of one spec field (spec_field), or a field of
its own listed below with what it is. A copy must keep the spec field's type, bounds and default; every
spec setting must reach some payload, unless payloads.PLANNED_NOT_CARRIED says what becomes of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

from pydantic import BaseModel, Field
from relctl_core import payloads
from relctl_core.payloads import (
    OMITTED_WHILE_UNSET,
    PLANNED_NOT_CARRIED,
    spec_field,
    spec_source,
)
from relctl_core.spec import ExperimentSpec, TrainSpec, _section_model
from relctl_core.stages import PAYLOADS
from relctl_trainer.job import TrainJob

# Fields that copy no spec field, per model: what the planner or the worker derives for a stage. (A
# field that holds a model of the payloads' own, like a DataFile, is checked through that model's fields.)
OWN_FIELDS: dict[type[BaseModel], set[str]] = {
    payloads.DataFile: {"path", "sha256"},
    payloads.IngestPayload: {"task"},
    payloads.TranslatePayload: {"task"},
    payloads.SplitPayload: {"task"},
    payloads.RunSettings: {"task", "tasks"},
    payloads.TrainPayload: {"task", "tasks", "fold"},
    payloads.PretrainPayload: {"task", "fold"},
    payloads.StageOne: {"aux_task"},
    payloads.BaselinePayload: {"task", "baseline", "fold"},
    payloads.EvaluatePayload: {"task", "folds"},
    payloads.EnsembleMember: {"run", "name", "folds"},
    # Not a stage's: a request to a run's translator outside any stage (relctl predict).
    payloads.TranslationRequest: {"texts", "languages", "expect_model", "reply"},
    # The worker's: the backbone resolved to a folder, the row files, and what a model for both tasks needs.
    TrainJob: {"model_path", "tasks", "private_layers", "init_from", "train_file", "val_file", "test_file", "output_dir"},
}


def spec_sections() -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()

    def collect(model: type[BaseModel]) -> None:
        for info in model.model_fields.values():
            section = _section_model(info.annotation)
            if section is not None and section not in found:
                found.add(section)
                collect(section)

    collect(ExperimentSpec)
    return found


SECTIONS = spec_sections()


def models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from models_in(arg)


def drift(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> list[str]:
    """What in ``model`` (and the models its fields hold, spec sections aside) disagrees with the spec."""
    seen = set() if seen is None else seen
    if model in seen or model in SECTIONS:
        return []
    seen.add(model)
    problems = []
    for name, info in model.model_fields.items():
        where = f"{model.__name__}.{name}"
        source = spec_source(info)
        held = list(models_in(info.annotation))
        if source is not None:
            spec = source.section.model_fields[source.name]
            setting = f"{source.section.__name__}.{source.name}"
            bounds = [mark for mark in info.metadata if mark is not source]
            if info.annotation != spec.annotation:
                problems.append(f"{where} is {info.annotation} but {setting} is {spec.annotation}")
            if bounds != spec.metadata:
                problems.append(f"{where} has bounds {bounds} but {setting} has {spec.metadata}")
            if (info.default, info.default_factory) != (spec.default, spec.default_factory):
                problems.append(f"{where} defaults to {info.default!r} but {setting} to {spec.default!r}")
        elif not held and name not in OWN_FIELDS.get(model, set()):
            problems.append(f"{where} is declared by hand: make it a spec section or spec_field, or list it in OWN_FIELDS")
        for held_model in held:
            problems += drift(held_model, seen)
    return problems


def test_every_payload_and_the_train_job_hold_to_the_spec() -> None:
    problems = []
    for model in [*PAYLOADS.values(), payloads.RunSettings, payloads.TranslationRequest, TrainJob]:
        problems += drift(model)
    assert problems == []
    for model, own in OWN_FIELDS.items():
        assert own <= set(model.model_fields), f"{model.__name__} has no field {own - set(model.model_fields)}"


def test_the_check_catches_a_field_that_drifts() -> None:
    class Drifting(BaseModel):
        lr: float | None = spec_field(TrainSpec, "lr")
        warmup_ratio: float = Field(0.1, ge=0, le=1)

    problems = drift(Drifting)
    assert len(problems) == 2
    assert problems[0].startswith("Drifting.lr is float | None but TrainSpec.lr is <class 'float'>")
    assert problems[1].startswith("Drifting.warmup_ratio is declared by hand")


def test_every_spec_setting_reaches_a_payload_or_is_planned_otherwise() -> None:
    carried_sections: set[type[BaseModel]] = set()
    copied: set[tuple[type[BaseModel], str]] = set()

    def collect(model: type[BaseModel]) -> None:
        for info in model.model_fields.values():
            source = spec_source(info)
            if source is not None:
                copied.add((source.section, source.name))
            for held in models_in(info.annotation):
                if held in SECTIONS:
                    carried_sections.add(held)
                    collect(held)  # a section's own sections travel with it
                elif held is not model:
                    collect(held)

    for payload in PAYLOADS.values():
        collect(payload)

    uncarried = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            section = _section_model(info.annotation)
            if section is not None:
                walk(section, f"{prefix}{name}.")
            elif model not in carried_sections and (model, name) not in copied:
                uncarried.append(prefix + name)

    walk(ExperimentSpec, "")
    assert sorted(uncarried) == sorted(PLANNED_NOT_CARRIED), "a spec setting no stage sees must say why in PLANNED_NOT_CARRIED"


def test_keys_left_out_while_unset_read_back_as_unset() -> None:
    for model, names in OMITTED_WHILE_UNSET.items():
        for name in names:
            info = model.model_fields[name]
            assert info.default is None and not info.is_required(), f"{model.__name__}.{name}"
