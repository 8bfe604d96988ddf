"""Process entry point of one training job: ``python -m relctl_trainer.child JOB_JSON_PATH``.

Prints every progress event as one JSON line on stdout, then ``{"event": "done", "result": ...}``, or
``{"event": "error", ...}`` with exit status 1 (the traceback goes to stderr). Under a launcher, only
rank 0 prints events; every rank logs to stderr.

SIGTERM asks the training to stop: it checkpoints at the end of the step it is in, prints
``{"event": "interrupted", "step": N, "checkpoint": PATH}`` and exits with status INTERRUPTED, so
that the job can be resumed from there (by this host or another).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, TextIO

# Progress bars of weight loading would only clutter the job's stderr log.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# OpenMP threads that spin while waiting make training over 10x slower whenever another process
# (a worker, a second job) competes for the cores; sleeping threads cost nothing measurable when idle.
# It must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from relctl_trainer.job import load_job  # noqa: E402
from relctl_trainer.training import STOP_REQUESTED, Interrupted, train  # noqa: E402

USAGE = "JOB_JSON_PATH"
# How often the training checks that the worker that started it is still alive.
PARENT_CHECK_SECONDS = 1.0
# Exit status of a training stopped by SIGTERM after checkpointing.
INTERRUPTED = 3


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # DeepSpeed's launcher appends --local_rank=N; the rank comes from the environment (LOCAL_RANK) anyway.
    args = [arg for arg in args if not arg.startswith("--local_rank")]
    events = _claim_stdout()
    if int(os.environ.get("RANK", "0")) != 0:
        events = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process

    _end_with_the_parent()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: STOP_REQUESTED.set())

    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps(_finite(event), allow_nan=False) + "\n")
        events.flush()

    if len(args) != 1:
        emit(
            {
                "event": "error",
                "message": f"usage: python -m relctl_trainer.child {USAGE}",
                "type": "UsageError",
            }
        )
        return 1
    try:
        result = train(load_job(args[0]), emit)
    except Interrupted as stop:
        emit({"event": "interrupted", "step": stop.step, "checkpoint": stop.checkpoint})
        return INTERRUPTED
    except Exception as exc:
        traceback.print_exc()
        emit({"event": "error", "message": str(exc), "type": type(exc).__name__})
        return 1
    emit({"event": "done", "result": result})
    return 0


def _end_with_the_parent() -> None:
    """Kill this training's whole process group (every rank) once the worker that started it is gone.

    The training runs in a session of its own, so a worker killed outright (SIGKILL, the host's OOM
    killer) would otherwise leave it running: its job is redelivered to another worker, and two
    trainings would write into the same folder. The checkpoints it leaves are what the next one resumes.
    """
    if os.getpgrp() != os.getpid():
        return  # not started as its own group's leader (run by hand): the group is not ours to kill
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _claim_stdout() -> TextIO:
    """Keep file descriptor 1 for events only; anything else printed there (by any library) goes to stderr."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    return events


def _finite(value: Any) -> Any:
    """A diverged run's NaN or infinite numbers become null, which every JSON parser accepts."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
