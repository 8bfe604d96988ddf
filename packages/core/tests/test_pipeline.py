"""The stage graph, the routing table and how stage states combine into run and experiment states."""

from __future__ import annotations

import pytest

from relctl_core import names
from relctl_core.celery_app import ROUTES, route_for
from relctl_core.pipeline import _combined_status


@pytest.mark.parametrize(
    ("task", "gpu", "queue"),
    [
        (names.INGEST, "cpu", "cpu"),
        (names.SPLIT, "cpu", "cpu"),
        (names.BASELINE, "cpu", "cpu"),
        (names.EVALUATE, "cpu", "cpu"),
        (names.TRANSLATE, "cpu", "translate"),
        (names.TRAIN, "cpu", "train.cpu"),
        (names.TRAIN, "A100", "train.a100"),
        (names.TRAIN, "h100", "train.h100"),
    ],
)
def test_one_routing_table_sends_each_service_to_its_queue(task: str, gpu: str, queue: str) -> None:
    assert route_for(task, {"gpu": gpu}) == queue


def test_every_task_name_has_a_route_and_unknown_ones_fail() -> None:
    for name in (names.INGEST, names.TRANSLATE, names.SPLIT, names.TRAIN, names.BASELINE, names.EVALUATE):
        assert any(name.startswith(pattern.rstrip("*")) for pattern in ROUTES)
    with pytest.raises(KeyError):
        route_for("other.service.task")


@pytest.mark.parametrize("statuses", [["done", "done"], ["done", "running"], ["failed", "pending"], ["cancelled", "done"]])
def test_combined_status(statuses: list[str]) -> None:
    expected = {("done", "done"): "done", ("done", "running"): "running", ("failed", "pending"): "failed", ("cancelled", "done"): "cancelled"}
    assert _combined_status(statuses) == expected[tuple(statuses)]


def _plan(directory, spec: str):
    """The stage graph of a spec over the (empty) QC and QI data files it names, as submit plans it."""
    from relctl_core.spec import expand_runs, load_spec
    from relctl_core.stages import plan_experiment

    names = ("qc.jsonl", "qi.jsonl")
    for name in names:
        (directory / name).write_text("")
    (directory / "experiment.yaml").write_text(spec)
    files = {str(directory / n): {"path": str(directory / n), "sha256": n} for n in names}
    return plan_experiment(expand_runs(load_spec(directory / "experiment.yaml")), files)


def test_sweep_runs_share_ingest_and_split_and_baselines_are_planned_once_per_task(tmp_path) -> None:
    plan = _plan(
        tmp_path,
        "name: plan\n"
        "data: {qc: {train: qc.jsonl}, qi: {train: qi.jsonl}}\n"
        "split: {folds: 3, train_folds: [0, 2]}\n"
        "sweep: {task: [qc, qi], train.lr: [0.001, 0.0001]}\n",
    )
    kinds: dict[str, int] = {}
    for stage in plan.stages.values():
        kinds[stage.kind] = kinds.get(stage.kind, 0) + 1
    # 4 model runs x 2 folds trained; 2 baselines x 2 tasks x 2 folds; an evaluate per run.
    assert kinds == {"ingest": 2, "split": 2, "train": 8, "evaluate": 8, "baseline": 8}
    assert sorted((r.kind, r.task) for r in plan.runs).count(("baseline", "QC")) == 2
    for stage in plan.stages.values():
        for dependency in stage.depends_on:
            assert list(plan.stages).index(dependency) < list(plan.stages).index(stage.key), "dependencies come first"
        if stage.kind == "train":
            assert stage.config["fold"] in (0, 2)
            assert [plan.stages[d].kind for d in stage.depends_on] == ["ingest", "split"]


def test_private_layers_reach_the_training_only_when_set(tmp_path) -> None:
    both = "name: plan\ntask: both\ndata: {qc: {train: qc.jsonl}, qi: {train: qi.jsonl}}\n"
    plan = _plan(tmp_path, both + "sweep: {model.routing: [heads, heads+private]}\n")
    models = [stage.config["model"] for stage in plan.stages.values() if stage.kind == "train"]
    # Unset, the setting is left out of the stage's config, which thus keeps the key it had before it existed.
    assert [model["routing"] for model in models] == ["heads", "heads+private"]
    assert all("private_layers" not in model for model in models)
    plan = _plan(tmp_path, both + "model: {routing: heads+private, private_layers: 3}\n")
    assert [s.config["model"]["private_layers"] for s in plan.stages.values() if s.kind == "train"] == [3]


def test_deepspeed_settings_reach_the_training_only_when_set(tmp_path) -> None:
    plan = _plan(
        tmp_path,
        "name: plan\ndata: {qc: {train: qc.jsonl}}\n"
        "resources: {gpu: h100, gpus: 4}\n"
        "sweep: {resources.launcher: [null, deepspeed]}\n",
    )
    resources = [stage.config["resources"] for stage in plan.stages.values() if stage.kind == "train"]
    assert resources == [{"gpu": "h100", "gpus": 4}, {"gpu": "h100", "gpus": 4, "launcher": "deepspeed"}]
