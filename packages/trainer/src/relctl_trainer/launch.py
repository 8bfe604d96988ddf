"""How a training job is started: one process, or one rank per GPU under torchrun or DeepSpeed.

The launcher runs inside the training's own process session, so cancelling kills every rank with it;
each job gets a free rendezvous port of its own, so two jobs on one host never collide.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from pathlib import Path
from typing import Any

from relctl_trainer.job import TrainJob

CHILD_MODULE = "relctl_trainer.child"
DEEPSPEED_CONFIG_FILE = "deepspeed.json"
# Clipping keeps an unlucky early batch from wrecking a freshly initialised head (every launcher). It
# lives here, not beside the training loop, so that the worker can build launch commands without torch.
MAX_GRAD_NORM = 1.0
# The release relctl is tested with (make install); it builds against the installed torch, hence
# --no-build-isolation, which keeps pip from fetching another torch to build it with.
DEEPSPEED_REQUIREMENT = "deepspeed==0.19.8"


def free_port() -> int:
    """A TCP port nobody listens on now, for one job's rendezvous (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch_command(job_file: Path, job: TrainJob, *, gpus: str | None, port: int) -> list[str]:
    """The command line that runs ``job``: the child itself, or a launcher that starts one per rank.

    ``gpus`` are the worker's GPUs (``relctl worker --gpus 0,1``); DeepSpeed is told them with
    ``--include`` (it sets CUDA_VISIBLE_DEVICES per rank itself), torchrun inherits them.
    """
    child = ["-m", CHILD_MODULE, str(job_file)]
    if job.processes == 1:
        return [sys.executable, *child]
    if job.launcher == "torchrun":
        return [
            sys.executable, "-m", "torch.distributed.run",
            f"--nproc-per-node={job.processes}", "--nnodes=1",
            "--master-addr=127.0.0.1", f"--master-port={port}",
            *child,
        ]  # fmt: skip
    if importlib.util.find_spec("deepspeed") is None:
        from relctl_core.errors import InputError

        raise InputError(
            f"launcher deepspeed needs the deepspeed package on this worker (pip install --no-build-isolation {DEEPSPEED_REQUIREMENT})",
            path="resources.launcher",
        )
    # DeepSpeed's launcher, from this environment rather than whichever `deepspeed` is first on PATH.
    launcher = [sys.executable, "-m", "deepspeed.launcher.runner", "--master_addr=127.0.0.1", f"--master_port={port}"]
    if gpus is None:
        # A worker without --gpus: the host's first N devices (on a CPU host, N processes).
        slots = [f"--num_gpus={job.processes}"]
    else:
        devices = gpus.split(",")
        if len(devices) < job.processes:
            from relctl_core.errors import InputError

            raise InputError(
                f"the job wants {job.processes} GPUs but the worker has {len(devices)} ({gpus})",
                path="resources.gpus",
            )
        slots = [f"--include=localhost:{','.join(devices[: job.processes])}"]
    return [*launcher, *slots, "--module", CHILD_MODULE, str(job_file)]


def deepspeed_config(job: TrainJob, *, bf16: bool, hidden_size: int) -> dict[str, Any]:
    """The DeepSpeed config of a job, with the values Hugging Face's "auto" would fill taken from the
    job and from the backbone's hidden size.

    ZeRO-2 shards optimizer state and gradients; ZeRO-3 also the parameters, and then gathers them
    in 16 bit on save so that the saved adapter has the same format as a one-process run's. Under
    ZeRO-3, weights of fewer than 10 x hidden_size numbers (biases, norms) stay whole on every rank.
    """
    zero: dict[str, Any] = {
        "stage": job.zero_stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": hidden_size * hidden_size,
    }
    if job.zero_stage == 3:
        zero["stage3_prefetch_bucket_size"] = int(0.9 * hidden_size * hidden_size)
        zero["stage3_param_persistence_threshold"] = 10 * hidden_size
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": job.train.batch_size,
        "gradient_accumulation_steps": job.train.grad_accum,
        "train_batch_size": job.train.batch_size * job.train.grad_accum * job.processes,
        "gradient_clipping": MAX_GRAD_NORM,
        "bf16": {"enabled": bf16},
        # relctl's own AdamW (DeepSpeed's fused Adam would need compiled kernels on every host).
        "zero_allow_untested_optimizer": True,
        "zero_optimization": zero,
        "steps_per_print": 10**9,  # progress comes from relctl's own events
        "wall_clock_breakdown": False,
    }


def write_deepspeed_config(job: TrainJob, directory: Path, *, bf16: bool, hidden_size: int) -> Path:
    path = directory / DEEPSPEED_CONFIG_FILE
    config = deepspeed_config(job, bf16=bf16, hidden_size=hidden_size)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path
