"""Multi-process training: the launch commands, the DeepSpeed config, and a real two-rank run (gloo, CPU)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from relctl_trainer.inputs import length_grouped_batches
from relctl_trainer.launch import deepspeed_config, free_port, launch_command
from relctl_trainer.modeling import choose_placement, load_relevance_model


def ranks(count: int, **launch: object) -> dict[str, object]:
    """resources for ``count`` data-parallel ranks. The GPU type only names a queue: here they run on CPU (gloo)."""
    return {"gpu": "a100", "gpus": count, **launch}


def test_one_process_runs_the_child_itself(make_job, tmp_path: Path) -> None:
    job = make_job(tmp_path)
    assert launch_command(tmp_path / "job.json", job, gpus=None, port=1234) == [
        sys.executable, "-m", "relctl_trainer.child", str(tmp_path / "job.json"),
    ]  # fmt: skip


def test_torchrun_starts_one_rank_per_gpu_on_the_jobs_own_port(make_job, tmp_path: Path) -> None:
    job = make_job(tmp_path, resources=ranks(4))
    command = launch_command(tmp_path / "job.json", job, gpus="0,1,2,3", port=29123)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert {"--nproc-per-node=4", "--nnodes=1", "--master-port=29123"} <= set(command)
    assert command[-3:] == ["-m", "relctl_trainer.child", str(tmp_path / "job.json")]


def test_deepspeed_is_told_the_workers_gpus(make_job, tmp_path: Path) -> None:
    job = make_job(tmp_path, resources=ranks(2, launcher="deepspeed"))
    command = launch_command(tmp_path / "job.json", job, gpus="2,3,5", port=29500)
    assert command == [
        sys.executable, "-m", "deepspeed.launcher.runner", "--master_addr=127.0.0.1", "--master_port=29500",
        "--include=localhost:2,3", "--module", "relctl_trainer.child", str(tmp_path / "job.json"),
    ]  # fmt: skip
    # A worker without --gpus: the host's first two.
    assert "--num_gpus=2" in launch_command(tmp_path / "job.json", job, gpus=None, port=29500)
    from relctl_core.errors import InputError

    with pytest.raises(InputError, match="wants 2 GPUs but the worker has 1"):
        launch_command(tmp_path / "job.json", job, gpus="7", port=29500)


def test_a_worker_without_deepspeed_says_how_to_install_it(make_job, tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    from relctl_core.errors import InputError

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else find_spec(name, *a))
    job = make_job(tmp_path, resources=ranks(2, launcher="deepspeed"))
    with pytest.raises(InputError, match="needs the deepspeed package.*--no-build-isolation deepspeed==") as raised:
        launch_command(tmp_path / "job.json", job, gpus=None, port=29500)
    assert raised.value.path == "resources.launcher"


def test_a_free_port_is_one_a_rendezvous_server_can_listen_on() -> None:
    import socket

    port = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()


def test_deepspeed_config_fills_what_auto_would_from_the_job(make_job, tmp_path: Path) -> None:
    job = make_job(tmp_path, resources=ranks(4, launcher="deepspeed"), train={"batch_size": 8, "grad_accum": 2})
    config = deepspeed_config(job, bf16=True, hidden_size=384)
    assert config["train_micro_batch_size_per_gpu"] == 8
    assert config["gradient_accumulation_steps"] == 2
    assert config["train_batch_size"] == 8 * 2 * 4  # DeepSpeed checks micro x accumulation x ranks
    assert config["bf16"] == {"enabled": True} and config["gradient_clipping"] == 1.0
    assert config["zero_optimization"]["stage"] == 2
    assert config["zero_optimization"]["reduce_bucket_size"] == 384 * 384
    assert not any(key.startswith("stage3_") for key in config["zero_optimization"])
    zero3 = deepspeed_config(make_job(tmp_path, resources={"launcher": "deepspeed", "zero_stage": 3}), bf16=False, hidden_size=32)
    zero3 = zero3["zero_optimization"]
    assert zero3["stage"] == 3 and zero3["stage3_gather_16bit_weights_on_model_save"] is True
    # Sized from the hidden size as "auto" would be: the tiny test backbone's 32 x 32 weights are
    # sharded (its 32-number biases are not), so the two-rank tests below run ZeRO-3's weight gathering.
    assert zero3["stage3_param_persistence_threshold"] == 320 and zero3["stage3_prefetch_bucket_size"] == 921
    json.dumps(config)  # what the launcher reads is plain JSON


@pytest.fixture(scope="module")
def dropout_free_backbone(tiny_backbone: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny BERT without dropout, so that two ranks and one process draw nothing at random."""
    folder = tmp_path_factory.mktemp("no-dropout") / "bert"
    shutil.copytree(tiny_backbone, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def _job_command(job, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """The launch command of ``job`` (written to tmp_path/job.json) on a free port, and its environment."""
    job_file = tmp_path / "job.json"
    job_file.write_text(job.model_dump_json())
    return launch_command(job_file, job, gpus=None, port=free_port()), {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _start(job, tmp_path: Path) -> subprocess.Popen[str]:
    """The job's launcher in a process group of its own, its events on stdout."""
    command, env = _job_command(job, tmp_path)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True)


def _launch(job, tmp_path: Path) -> list[dict]:
    command, env = _job_command(job, tmp_path)
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


# 512 rows in batches of 18: 29 batches in one epoch.
SHORT_LAST_STEP = {"epochs": 1, "batch_size": 18}


def _oof(path: str) -> np.ndarray:
    return np.array([json.loads(line)["prob"] for line in Path(path).read_text().splitlines()])


def test_two_ranks_train_the_same_model_as_one_process_accumulating_their_batches(
    make_job, dropout_free_backbone: str, tmp_path: Path
) -> None:
    common = {"model_path": dropout_free_backbone, "lora": {"dropout": 0.0}, "test_file": None}
    two_ranks = _launch(make_job(tmp_path / "ranks", resources=ranks(2), train={"epochs": 1}, **common), tmp_path)
    one = _launch(make_job(tmp_path / "one", train={"epochs": 1, "grad_accum": 2}, **common), tmp_path)

    # Rank 0 alone reports: one start, one done.
    assert [e["event"] for e in two_ranks].count("start") == 1 and two_ranks[-1]["event"] == "done"
    assert two_ranks[0]["total_steps"] == one[0]["total_steps"] == 16  # 32 batches, 2 per step
    ranks_result, one_result = two_ranks[-1]["result"], one[-1]["result"]
    # The gradients were averaged across ranks exactly as one process sums its accumulated batches.
    np.testing.assert_allclose(_oof(ranks_result["oof_file"]), _oof(one_result["oof_file"]), rtol=0, atol=1e-5)
    assert ranks_result["metrics"]["roc_auc"] > 0.8

    # The saved model has the one-process format: it loads and predicts like any other.
    model, card = load_relevance_model(Path(ranks_result["adapter_dir"]), choose_placement("auto"))
    assert card.pooling == "mean" and model.head.weight.shape == (1, 32)


def test_a_short_last_group_that_leaves_one_rank_fewer_batches_does_not_hang(
    make_job, dropout_free_backbone: str, tmp_path: Path
) -> None:
    # 512 rows in batches of 18: 29 batches a epoch, 6 a step (3 per rank), so the last step has 5:
    # three for rank 0, two for rank 1. It trains what one process accumulating 6 batches trains.
    common = {"model_path": dropout_free_backbone, "lora": {"dropout": 0.0}, "test_file": None}
    two_ranks = _launch(make_job(tmp_path / "ranks", resources=ranks(2), train={**SHORT_LAST_STEP, "grad_accum": 3}, **common), tmp_path)
    one = _launch(make_job(tmp_path / "one", train={**SHORT_LAST_STEP, "grad_accum": 6}, **common), tmp_path)
    assert two_ranks[0]["total_steps"] == one[0]["total_steps"] == 5
    np.testing.assert_allclose(
        _oof(two_ranks[-1]["result"]["oof_file"]), _oof(one[-1]["result"]["oof_file"]), rtol=0, atol=1e-5
    )


def test_two_ranks_train_private_layers_that_some_batches_leave_without_gradients(
    make_job, make_rows, dropout_free_backbone: str, tmp_path: Path
) -> None:
    # One row in eight is QI, so some batches hold QC rows only: the QI layers get no gradient from
    # them, which DistributedDataParallel must be told to expect.
    rows = [{**row, "task": "QI" if index % 8 == 0 else "QC"} for index, row in enumerate(make_rows(512, seed=1))]
    val = [{**row, "task": "QI" if index % 2 else "QC"} for index, row in enumerate(make_rows(64, seed=2))]
    files = {"train_file": str(tmp_path / "train.jsonl"), "val_file": str(tmp_path / "val.jsonl")}
    for name, content in (("train_file", rows), ("val_file", val)):
        Path(files[name]).write_text("".join(json.dumps(row) + "\n" for row in content))
    common = {
        "model_path": dropout_free_backbone, "lora": {"dropout": 0.0}, "test_file": None,
        "tasks": ["QC", "QI"], "private_layers": 1, **files,
    }  # fmt: skip
    two_ranks = _launch(make_job(tmp_path / "ranks", resources=ranks(2), train={"epochs": 1}, **common), tmp_path)
    one = _launch(make_job(tmp_path / "one", train={"epochs": 1, "grad_accum": 2}, **common), tmp_path)
    np.testing.assert_allclose(
        _oof(two_ranks[-1]["result"]["oof_file"]), _oof(one[-1]["result"]["oof_file"]), rtol=0, atol=1e-5
    )
    model, card = load_relevance_model(Path(two_ranks[-1]["result"]["adapter_dir"]), choose_placement("auto"))
    assert card.private_layers == 1 and model.private is not None


@pytest.mark.parametrize("zero_stage", [2, 3])
def test_deepspeed_ranks_train_private_layers_as_one_process_does(
    make_job, make_rows, dropout_free_backbone: str, tmp_path: Path, zero_stage: int
) -> None:
    # Batches of one task each: a rank whose batch lacks a task still runs that task's layers, on one
    # row that counts for nothing, so that ZeRO's ranks run the same layers in the same order (stage 3
    # gathered weights no other rank did and hung; stage 2 summed the wrong gradients).
    rows = [{**row, "task": "QI" if index % 2 else "QC"} for index, row in enumerate(make_rows(512, seed=1))]
    val = [{**row, "task": "QI" if index % 2 else "QC"} for index, row in enumerate(make_rows(64, seed=2))]
    files = {"train_file": str(tmp_path / "train.jsonl"), "val_file": str(tmp_path / "val.jsonl")}
    for name, content in (("train_file", rows), ("val_file", val)):
        Path(files[name]).write_text("".join(json.dumps(row) + "\n" for row in content))
    common = {
        "model_path": dropout_free_backbone, "lora": {"dropout": 0.0}, "test_file": None,
        "tasks": ["QC", "QI"], "private_layers": 1, **files,
    }  # fmt: skip
    zero = ranks(2, launcher="deepspeed", zero_stage=zero_stage)
    ranked = _launch(make_job(tmp_path / "ranks", resources=zero, train={**SHORT_LAST_STEP, "grad_accum": 3, "seed": 1}, **common), tmp_path)
    one = _launch(make_job(tmp_path / "one", train={**SHORT_LAST_STEP, "grad_accum": 6, "seed": 1}, **common), tmp_path)

    # Where a step holds no row of a task, DeepSpeed's optimizer moves that task's layers on a zero
    # gradient while one process leaves them be; with this data and seed, every step holds both tasks
    # (a batch's tasks follow from the task counts alone: rows are sorted by task before length).
    tasks = np.array([row["task"] == "QI" for row in rows], dtype=np.int64)
    plan = length_grouped_batches(np.zeros(len(rows)), 18, np.random.default_rng([1, 1]), groups=tasks)
    assert all(len({int(task) for batch in plan[i : i + 6] for task in tasks[batch]}) == 2 for i in range(0, len(plan), 6))
    assert ranked[0]["total_steps"] == one[0]["total_steps"] == 5
    np.testing.assert_allclose(
        _oof(ranked[-1]["result"]["oof_file"]), _oof(one[-1]["result"]["oof_file"]), rtol=0, atol=1e-5
    )
    model, card = load_relevance_model(Path(ranked[-1]["result"]["adapter_dir"]), choose_placement("auto"))
    assert card.private_layers == 1 and model.private is not None


@pytest.mark.parametrize("zero_stage", [2, 3])
def test_deepspeed_ranks_train_the_same_model_as_one_process(
    make_job, dropout_free_backbone: str, tmp_path: Path, zero_stage: int
) -> None:
    # Scoring batches of 36 rows: under ZeRO-3 each rank scores one of the 64 validation rows' two
    # batches; of the 24 test rows' one, rank 1 scores nothing and makes a spare pass in step with rank 0.
    common = {"model_path": dropout_free_backbone, "lora": {"dropout": 0.0}}
    zero = ranks(2, launcher="deepspeed", zero_stage=zero_stage)
    ranked = _launch(make_job(tmp_path / "ranks", resources=zero, train={**SHORT_LAST_STEP, "grad_accum": 3}, **common), tmp_path)
    one = _launch(make_job(tmp_path / "one", train={**SHORT_LAST_STEP, "grad_accum": 6}, **common), tmp_path)
    assert [e["event"] for e in ranked].count("start") == 1 and ranked[-1]["event"] == "done"
    assert ranked[0]["total_steps"] == one[0]["total_steps"] == 5  # with a short last step, as above
    assert ranked[0]["trainable_parameters"] == one[0]["trainable_parameters"] > 0
    for output in ("oof_file", "test_file"):
        np.testing.assert_allclose(
            _oof(ranked[-1]["result"][output]), _oof(one[-1]["result"][output]), rtol=0, atol=1e-5
        )
    assert json.loads((tmp_path / "ranks" / "deepspeed.json").read_text())["zero_optimization"]["stage"] == zero_stage
    # DeepSpeed's own checkpoint of the adapters and optimizer shards sits in relctl's checkpoint folder.
    [checkpoint] = (tmp_path / "ranks" / "checkpoints").iterdir()
    assert json.loads((checkpoint / "state.json").read_text())["engine"] is True
    assert any((checkpoint / "engine").iterdir())
    model, card = load_relevance_model(Path(ranked[-1]["result"]["adapter_dir"]), choose_placement("auto"))
    assert card.pooling == "mean" and model.head.weight.shape == (1, 32)


def test_a_deepspeed_training_killed_after_a_checkpoint_resumes_from_it(
    make_job, dropout_free_backbone: str, tmp_path: Path
) -> None:
    common = {
        "model_path": dropout_free_backbone, "lora": {"dropout": 0.0}, "test_file": None,
        "resources": ranks(2, launcher="deepspeed"), "train": {**SHORT_LAST_STEP, "grad_accum": 3, "checkpoint_steps": 2},
    }  # fmt: skip
    job = make_job(tmp_path / "killed", **common)
    launcher = _start(job, tmp_path)
    for line in launcher.stdout:
        if line.startswith("{") and json.loads(line)["event"] == "checkpoint":
            os.killpg(launcher.pid, signal.SIGKILL)  # every rank and the launcher, right after step 2's checkpoint
            break
    launcher.wait()
    assert [entry.name for entry in (tmp_path / "killed" / "checkpoints").iterdir()] == ["step-2"]

    resumed = _launch(job, tmp_path)
    result = resumed[-1]["result"]
    assert (result["resumed_from_step"], result["steps_run"]) == (2, 3)
    uninterrupted = _launch(make_job(tmp_path / "whole", **common), tmp_path)
    np.testing.assert_allclose(
        _oof(result["oof_file"]), _oof(uninterrupted[-1]["result"]["oof_file"]), rtol=0, atol=1e-5
    )


@pytest.mark.parametrize("launcher", ["torchrun", "deepspeed"])
def test_sigterm_stops_every_rank_at_one_step_with_a_checkpoint_to_resume(
    make_job, dropout_free_backbone: str, tmp_path: Path, launcher: str
) -> None:
    """A stopping worker sends SIGTERM to the training's process group: launcher and ranks alike. The
    ranks agree on one step to stop at, checkpoint it together, and the job resumes from it exactly."""
    common = {"model_path": dropout_free_backbone, "lora": {"dropout": 0.0}, "test_file": None}
    job = make_job(tmp_path / "stopped", resources={**ranks(2), "launcher": launcher}, train={"epochs": 1}, **common)
    proc = _start(job, tmp_path)
    events = []
    for line in proc.stdout:
        if line.startswith("{"):
            events.append(json.loads(line))
            if events[-1]["event"] == "step":
                os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=120)
    (stopped,) = [e for e in events if e["event"] == "interrupted"]
    step = stopped["step"]
    assert [entry.name for entry in (tmp_path / "stopped" / "checkpoints").iterdir()] == [f"step-{step}"]

    resumed = _launch(job, tmp_path)[-1]["result"]
    assert (resumed["resumed_from_step"], resumed["steps_run"]) == (step, 16 - step)
    one = _launch(make_job(tmp_path / "one", train={"epochs": 1, "grad_accum": 2}, **common), tmp_path)
    np.testing.assert_allclose(_oof(resumed["oof_file"]), _oof(one[-1]["result"]["oof_file"]), rtol=0, atol=1e-5)
