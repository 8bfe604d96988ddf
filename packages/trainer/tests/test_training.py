"""Training the tiny random BERT on the toy task: learning, events, outputs, determinism and resuming."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from relctl_core.errors import InputError

from relctl_trainer import modeling, training
from relctl_trainer.job import TrainJob

STEPS_PER_EPOCH = 32  # 512 training rows in batches of 16


@dataclass
class Run:
    job: TrainJob
    result: dict[str, Any]
    events: list[dict[str, Any]]
    model: torch.nn.Module
    initial_state: dict[str, torch.Tensor]


def _run_capturing_the_model(job: TrainJob) -> Run:
    built: list[tuple[torch.nn.Module, dict[str, torch.Tensor]]] = []
    build = training.build_relevance_model

    def build_and_capture(*args: Any, **kwargs: Any) -> torch.nn.Module:
        model = build(*args, **kwargs)
        built.append((model, {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}))
        return model

    events: list[dict[str, Any]] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "build_relevance_model", build_and_capture)
        result = training.train(job, events.append)
    [(model, initial_state)] = built
    return Run(job, result, events, model, initial_state)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, make_job) -> Run:
    return _run_capturing_the_model(make_job(tmp_path_factory.mktemp("run")))


def _oof_probs(oof_file: str | Path) -> np.ndarray:
    lines = Path(oof_file).read_text(encoding="utf-8").splitlines()
    return np.array([json.loads(line)["prob"] for line in lines])


def _steps(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["event"] == "step"]


def test_training_changes_adapters_and_head_and_leaves_the_base_alone(run: Run) -> None:
    parameters = dict(run.model.named_parameters())
    trainable = {name for name, parameter in parameters.items() if parameter.requires_grad}
    assert any("lora_A" in name for name in trainable) and any("lora_B" in name for name in trainable)
    assert {"head.weight", "head.bias"} <= trainable
    for name in trainable:
        assert not torch.equal(parameters[name].detach(), run.initial_state[name]), f"{name} did not change"
    frozen = set(run.initial_state) - trainable
    assert any("base_layer.weight" in name for name in frozen)
    assert any("word_embeddings" in name for name in frozen)
    for name in frozen:
        assert torch.equal(run.model.state_dict()[name], run.initial_state[name]), f"{name} changed"
    start = run.events[0]
    assert start["trainable_parameters"] == sum(parameters[name].numel() for name in trainable)


def test_loss_falls_and_the_toy_task_is_learned(run: Run) -> None:
    steps = _steps(run.events)
    assert steps[-1]["loss"] < steps[0]["loss"]
    # Chance is 0.5. Two epochs of this tiny random model land anywhere from about 0.55 to 0.93 with the
    # seed (and the dropout masks it draws); the default seed's is about 0.8.
    assert run.result["metrics"]["roc_auc"] > 0.75


def test_events_arrive_in_order(run: Run) -> None:
    kinds = [event["event"] for event in run.events]
    collapsed = [kind for i, kind in enumerate(kinds) if i == 0 or kind != kinds[i - 1]]
    assert collapsed == ["start", "step", "epoch", "checkpoint", "step", "epoch", "checkpoint"]
    start = run.events[0]
    assert start == {
        "event": "start",
        "total_steps": 2 * STEPS_PER_EPOCH,
        "epochs": 2,
        "train_rows": 512,
        "trainable_parameters": start["trainable_parameters"],
        "device": "cpu",
        "precision": "fp32",
        "resumed_from_epoch": None,
        "resumed_from_step": None,
        "initialised_from": None,
    }
    steps = _steps(run.events)
    assert [step["step"] for step in steps] == sorted({step["step"] for step in steps})
    assert steps[0]["step"] == 1 and steps[-1]["step"] == 2 * STEPS_PER_EPOCH
    assert STEPS_PER_EPOCH in [step["step"] for step in steps if step["epoch"] == 1]
    epochs = [event for event in run.events if event["event"] == "epoch"]
    assert [event["epoch"] for event in epochs] == [1, 2]
    assert set(epochs[0]["val"]) == {"loss", "roc_auc", "f1"}
    for event in run.events:
        json.dumps(event, allow_nan=False)


def test_outputs_are_written(run: Run) -> None:
    output_dir = Path(run.job.output_dir)
    result = run.result
    assert result["oof_file"] == str(output_dir / "oof.jsonl")
    assert result["test_file"] == str(output_dir / "test.jsonl")
    assert result["adapter_dir"] == str(output_dir / "model")
    assert result["epochs_run"] == 2
    assert result["metrics"] == [event for event in run.events if event["event"] == "epoch"][-1]["val"]

    val_rows = [json.loads(line) for line in Path(run.job.val_file).read_text().splitlines()]
    oof = [json.loads(line) for line in (output_dir / "oof.jsonl").read_text().splitlines()]
    assert [(row["id"], row["language"], row["label"]) for row in oof] == [
        (row["id"], row["language"], row["label"]) for row in val_rows
    ]
    assert all(0.0 <= row["prob"] <= 1.0 for row in oof)
    test = [json.loads(line) for line in (output_dir / "test.jsonl").read_text().splitlines()]
    assert len(test) == 24 and set(test[0]) == {"id", "language", "prob"}

    model_dir = output_dir / "model"
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "head.safetensors",
        "relevance_model.json",
    ):
        assert (model_dir / name).is_file(), name
    card = json.loads((model_dir / "relevance_model.json").read_text())
    assert card["pooling"] == "mean" and card["head_outputs"] == 1 and card["hidden_size"] == 32
    assert [path.name for path in (output_dir / "checkpoints").iterdir()] == [f"step-{2 * STEPS_PER_EPOCH}"]
    assert TrainJob.model_validate_json((output_dir / "job.json").read_text()) == run.job


def test_same_seed_gives_the_same_predictions(run: Run, make_job, tmp_path: Path) -> None:
    again = training.train(make_job(tmp_path / "again"), lambda event: None)
    np.testing.assert_allclose(
        _oof_probs(again["oof_file"]), _oof_probs(run.result["oof_file"]), rtol=0, atol=1e-7
    )
    other = training.train(make_job(tmp_path / "other", train={"seed": 7}), lambda event: None)
    assert not np.allclose(_oof_probs(other["oof_file"]), _oof_probs(run.result["oof_file"]), atol=1e-4)


class Killed(Exception):
    """Stands in for the worker dying right after a checkpoint."""


def _die_after_first_checkpoint(event: dict[str, Any]) -> None:
    if event["event"] == "checkpoint" and event["epoch"] == 1:
        raise Killed


def test_a_restarted_job_resumes_from_the_last_complete_epoch(run: Run, make_job, tmp_path: Path) -> None:
    job = make_job(tmp_path / "crashing")
    with pytest.raises(Killed):
        training.train(job, _die_after_first_checkpoint)
    assert [path.name for path in (tmp_path / "crashing" / "checkpoints").iterdir()] == [f"step-{STEPS_PER_EPOCH}"]
    assert not (tmp_path / "crashing" / "model").exists()

    events: list[dict[str, Any]] = []
    result = training.train(job, events.append)
    assert events[0]["resumed_from_epoch"] == 1
    steps = _steps(events)
    assert {step["epoch"] for step in steps} == {2}
    assert min(step["step"] for step in steps) > STEPS_PER_EPOCH
    assert [event["epoch"] for event in events if event["event"] == "epoch"] == [2]
    assert result["epochs_run"] == 2
    # Weights, optimizer, schedule, RNG and data order all resumed: the same model as without the crash.
    np.testing.assert_allclose(
        _oof_probs(result["oof_file"]), _oof_probs(run.result["oof_file"]), rtol=0, atol=1e-6
    )

    events.clear()
    rerun = training.train(job, events.append)
    assert events[0]["resumed_from_epoch"] == 2
    assert [event["event"] for event in events] == ["start"]
    assert rerun["metrics"] == result["metrics"]


def test_a_job_killed_mid_epoch_resumes_from_its_last_step_checkpoint(run: Run, make_job, tmp_path: Path) -> None:
    job = make_job(tmp_path / "crashing", train={"checkpoint_steps": 10})

    def die_at_step_40(event: dict[str, Any]) -> None:
        if event["event"] == "checkpoint" and event["step"] == 40:
            raise Killed

    events: list[dict[str, Any]] = []
    with pytest.raises(Killed):
        training.train(job, lambda event: (events.append(event), die_at_step_40(event)))
    saved = [(event["step"], event["epoch_end"]) for event in events if event["event"] == "checkpoint"]
    assert saved == [(10, False), (20, False), (30, False), (STEPS_PER_EPOCH, True), (40, False)]
    assert [path.name for path in (tmp_path / "crashing" / "checkpoints").iterdir()] == ["step-40"]

    events.clear()
    result = training.train(job, events.append)
    assert events[0]["resumed_from_step"] == 40 and events[0]["resumed_from_epoch"] == 1
    steps = _steps(events)
    assert min(step["step"] for step in steps) > 40, "steps before the checkpoint were trained again"
    assert (result["resumed_from_step"], result["steps_run"]) == (40, 2 * STEPS_PER_EPOCH - 40)
    assert [event["epoch"] for event in events if event["event"] == "epoch"] == [2]
    # Mid-epoch too, weights, optimizer, schedule, RNG and the rest of the epoch's batches resume
    # exactly: the same model as the run that was never interrupted (and never checkpointed mid-epoch).
    np.testing.assert_allclose(
        _oof_probs(result["oof_file"]), _oof_probs(run.result["oof_file"]), rtol=0, atol=1e-6
    )


def test_a_checkpoint_of_another_job_is_not_resumed(make_job, tmp_path: Path) -> None:
    with pytest.raises(Killed):
        training.train(make_job(tmp_path), _die_after_first_checkpoint)
    with pytest.raises(InputError, match=r"changed: train\.lr\)"):
        training.train(make_job(tmp_path, train={"lr": 1e-3}), lambda event: None)


def test_max_steps_and_gradient_accumulation_without_validation(make_job, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    result = training.train(
        make_job(tmp_path, train={"grad_accum": 3, "max_steps": 5}, val_file=None, test_file=None), events.append
    )
    assert events[0]["total_steps"] == 5
    assert _steps(events)[-1]["step"] == 5
    assert [(event["epoch"], event["val"]) for event in events if event["event"] == "epoch"] == [(1, None)]
    assert result["oof_file"] is None and result["test_file"] is None and result["metrics"] is None
    assert result["epochs_run"] == 1


def test_a_bad_training_row_names_its_line(make_job, make_rows, tmp_path: Path) -> None:
    rows = make_rows(3, seed=1)
    rows[2]["label"] = "yes"
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(InputError) as raised:
        training.train(make_job(tmp_path / "out", train_file=str(train_file)), lambda event: None)
    assert (raised.value.file, raised.value.line) == (str(train_file), 3)


def test_a_decoder_backbone_learns_the_toy_task(make_job, tiny_decoder: str, tmp_path: Path) -> None:
    captured = _run_capturing_the_model(make_job(tmp_path, model_path=tiny_decoder, train={"lr": 2e-2}))
    adapted = {name.split(".lora_A")[0].rsplit(".", 1)[1] for name, p in captured.model.named_parameters() if p.requires_grad and "lora_A" in name}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    steps = _steps(captured.events)
    assert steps[-1]["loss"] < steps[0]["loss"]
    assert captured.result["metrics"]["roc_auc"] > 0.85
    card = json.loads((tmp_path / "model" / "relevance_model.json").read_text())
    assert (card["architecture"], card["pooling"]) == ("decoder", "last")


def test_a_job_can_continue_a_trained_model(run: Run, make_job, tmp_path: Path) -> None:
    """TAPT stage 2 starts from stage 1's adapter and head: with a vanishing learning rate it predicts
    what the model it continues predicted; a fresh model does not."""
    tiny_steps = {"train": {"lr": 1e-12, "max_steps": 1}, "test_file": None}
    events: list[dict[str, Any]] = []
    continued = training.train(make_job(tmp_path / "continued", init_from=run.result["adapter_dir"], **tiny_steps), events.append)
    assert events[0]["initialised_from"] == run.result["adapter_dir"]
    np.testing.assert_allclose(_oof_probs(continued["oof_file"]), _oof_probs(run.result["oof_file"]), rtol=0, atol=1e-5)
    fresh = training.train(make_job(tmp_path / "fresh", **tiny_steps), lambda event: None)
    assert not np.allclose(_oof_probs(fresh["oof_file"]), _oof_probs(run.result["oof_file"]), atol=1e-2)

    with pytest.raises(InputError, match="does not fit"):
        training.train(make_job(tmp_path / "other-rank", init_from=run.result["adapter_dir"], lora={"r": 3}, **tiny_steps), lambda event: None)


@pytest.mark.parametrize("asked_at", [1, STEPS_PER_EPOCH], ids=["mid-epoch", "epoch-end"])
def test_a_stop_request_checkpoints_at_that_step_and_the_job_resumes_there(run: Run, make_job, tmp_path: Path, asked_at: int) -> None:
    """What SIGTERM asks of a training (a worker being stopped): finish the step, checkpoint, stop; the
    resumed job ends as if it had never stopped. Step events come at the first step and each epoch's
    last, so the request arrives during one of those."""
    job = make_job(tmp_path / "stopping")

    def stop_at(event: dict[str, Any]) -> None:
        if event["event"] == "step" and event["step"] == asked_at:
            training.STOP_REQUESTED.set()

    try:
        with pytest.raises(training.Interrupted) as stopped:
            training.train(job, stop_at)
    finally:
        training.STOP_REQUESTED.clear()
    step = stopped.value.step
    assert step == asked_at  # that very step, not the next periodic checkpoint
    assert [path.name for path in (tmp_path / "stopping" / "checkpoints").iterdir()] == [f"step-{step}"]
    assert stopped.value.checkpoint and Path(stopped.value.checkpoint).name == f"step-{step}"
    assert not (tmp_path / "stopping" / "model").exists()

    events: list[dict[str, Any]] = []
    result = training.train(job, events.append)
    assert (result["resumed_from_step"], result["steps_run"]) == (step, 2 * STEPS_PER_EPOCH - step)
    np.testing.assert_allclose(_oof_probs(result["oof_file"]), _oof_probs(run.result["oof_file"]), rtol=0, atol=1e-6)


def test_a_cpu_that_multiplies_bf16_trains_in_bf16_learns_and_resumes_exactly(make_job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """precision auto on a CPU with AVX-512 BF16 or AMX: bf16 autocast in training, frozen base weights
    held in bf16, trained ones in fp32, scoring in fp32; the loss falls, and a job killed mid-epoch resumes to the same model as one
    never interrupted. bench/train_speed.py holds bf16's quality against fp32's on real rows. (Any CPU runs bf16, natively or not: only its speed differs.)"""
    monkeypatch.setattr(modeling, "cpu_has_bf16", lambda: True)
    whole = _run_capturing_the_model(make_job(tmp_path / "whole", train={"precision": "auto"}))
    assert whole.events[0]["precision"] == "bf16"
    steps = _steps(whole.events)
    assert steps[-1]["loss"] < steps[0]["loss"]  # (on this tiny model the ROC-AUC swings with the seed in either precision)
    dtypes = {name: parameter.dtype for name, parameter in whole.model.named_parameters()}
    assert {dtypes[name] for name, parameter in whole.model.named_parameters() if parameter.requires_grad} == {torch.float32}
    assert all(dtype == torch.bfloat16 for name, dtype in dtypes.items() if "base_layer.weight" in name)
    assert json.loads((Path(whole.result["adapter_dir"]) / "relevance_model.json").read_text())["base_weights"] == "bfloat16"
    # Scoring on a CPU is fp32, from the same (bf16-rounded) weights: the validation rows' scores are
    # those of the saved model, scored in other batches, to float precision.
    from relctl_trainer.predict import predict_probs

    val_rows = [json.loads(line) for line in Path(whole.job.val_file).read_text().splitlines()]
    np.testing.assert_allclose(predict_probs([whole.result["adapter_dir"]], val_rows[5:] + val_rows[:5]),
                               np.concatenate([_oof_probs(whole.result["oof_file"])[5:], _oof_probs(whole.result["oof_file"])[:5]]), rtol=0, atol=1e-6)
    # ... and training's weights were put back as bf16 after each scoring.
    assert all(p.dtype == torch.bfloat16 for name, p in whole.model.named_parameters() if "base_layer.weight" in name)

    job = make_job(tmp_path / "crashing", train={"precision": "auto", "checkpoint_steps": 10})

    def die_at_step_20(event: dict[str, Any]) -> None:
        if event["event"] == "checkpoint" and event["step"] == 20:
            raise Killed

    with pytest.raises(Killed):
        training.train(job, die_at_step_20)
    result = training.train(job, lambda event: None)
    assert result["resumed_from_step"] == 20
    np.testing.assert_allclose(_oof_probs(result["oof_file"]), _oof_probs(whole.result["oof_file"]), rtol=0, atol=1e-6)
