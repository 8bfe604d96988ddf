"""The training child process: JSON lines on stdout, ``done`` or ``error`` last, and its exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _run_child(job_file: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "relctl_trainer.child", str(job_file)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_child_streams_events_and_ends_with_done(make_job, tmp_path: Path) -> None:
    job = make_job(tmp_path / "out", train={"max_steps": 6})
    job_file = tmp_path / "job.json"
    job_file.write_text(job.model_dump_json())

    completed = _run_child(job_file)

    assert completed.returncode == 0, completed.stderr
    events = [json.loads(line) for line in completed.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[0]["total_steps"] == 6
    assert {"step", "epoch", "checkpoint"} <= {event["event"] for event in events}
    assert events[-1]["event"] == "done"
    assert events[-1]["result"]["oof_file"] == str(tmp_path / "out" / "oof.jsonl")
    assert Path(events[-1]["result"]["adapter_dir"], "head.safetensors").is_file()


def test_child_reports_a_bad_job_as_an_error_event(tmp_path: Path) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({"model_path": "m", "train_file": "t", "output_dir": "o", "lora": {"r": 0}}))

    completed = _run_child(job_file)

    assert completed.returncode == 1
    [event] = [json.loads(line) for line in completed.stdout.splitlines()]
    assert event["event"] == "error" and event["type"] == "InputError"
    assert "lora.r" in event["message"] and str(job_file) in event["message"]
    assert "Traceback" in completed.stderr
