"""The embedded default: `relctl run` with no servers (filesystem broker, SQLite), in-process workers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support import experiment_rows, relctl
from tests.tiny_model import build_tiny_backbone

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "data"

SPEC = """\
name: embedded
data:
  qi: {{train: data/qi_train.jsonl, max_rows: 160}}
task: qi
split: {{strategy: category-aware, folds: 4, train_folds: all}}
model: {{backbone: {backbone}}}
train: {{epochs: 1, batch_size: 16, max_length: 32}}
sweep: {{model.lora.r: [2, 4]}}
"""


def test_run_executes_every_stage_in_process_and_ranks_the_sweep(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    build_tiny_backbone(work / "tiny", [work / "data" / "qi_train.jsonl"])
    (work / "experiment.yaml").write_text(SPEC.format(backbone=work / "tiny"))

    done = relctl("run", "experiment.yaml", "--json", env=relctl_env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "experiment 1: done" in done.stderr  # progress goes to stderr, so that stdout is the JSON alone
    board = json.loads(done.stdout)
    # The board `relctl run` prints is its experiment's, as `relctl leaderboard --experiment` shows it.
    assert board == json.loads(relctl("leaderboard", "--experiment", "1", "--json", env=relctl_env).stdout)
    assert "leaderboard: f1@oof" in relctl("leaderboard", env=relctl_env).stdout
    models = sorted(r["run"] for r in board["rows"] if r["kind"] == "model")
    assert models == ["r=2", "r=4"]
    assert all(r["folds"] == 4 for r in board["rows"])

    status = json.loads(relctl("status", "1", "--json", env=relctl_env).stdout)
    assert all(s["status"] == "done" for s in status["stages"])
    assert {s["queue"] for s in status["stages"]} == {"cpu", "train.cpu"}

    logs = relctl("logs", "1", env=relctl_env).stdout
    assert "epoch 1 done" in logs and "started on" in logs


def test_a_missing_store_model_is_bad_input_before_anything_runs(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    (work / "experiment.yaml").write_text(SPEC.format(backbone="multilingual-e5-small"))
    env = {**relctl_env, "RELCTL_MODEL_STORE": str(tmp_path / "empty-store")}
    done = relctl("run", "experiment.yaml", env=env, cwd=work)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "model.backbone: model 'multilingual-e5-small' is not installed" in " ".join(done.stderr.split())
    assert experiment_rows(Path(relctl_env["RELCTL_HOME"])) == 0


def test_retry_reruns_only_the_failed_stages_here(tmp_path: Path, relctl_env: dict[str, str]) -> None:
    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    broken = work / "tiny"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert"}')  # a model folder whose weights are missing
    (work / "experiment.yaml").write_text(SPEC.format(backbone=broken).replace("sweep: {model.lora.r: [2, 4]}\n", ""))

    failed = relctl("run", "experiment.yaml", env=relctl_env, cwd=work)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "relctl retry 1" in failed.stderr
    before = {s["stage"]: s for s in json.loads(relctl("status", "1", "--json", env=relctl_env).stdout)["stages"]}
    assert {s["status"] for k, s in before.items() if k.startswith("train")} == {"failed"}

    build_tiny_backbone(broken, [work / "data" / "qi_train.jsonl"])
    retried = relctl("retry", "1", env=relctl_env)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    after = {s["stage"]: s for s in json.loads(relctl("status", "1", "--json", env=relctl_env).stdout)["stages"]}
    assert all(s["status"] == "done" for s in after.values())
    for name, stage in before.items():
        # Finished stages are kept as they were; failed and waiting ones ran once more.
        extra = 0 if stage["status"] == "done" else 1
        assert after[name]["attempts"] == stage["attempts"] + extra, name


def test_a_worker_that_stops_ends_the_watch_with_an_error_and_cancels(
    tmp_path: Path, relctl_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from relctl_cli.commands.running import watch_here
    from relctl_core.experiments import submit
    from relctl_core.settings import load_settings
    from relctl_core.worker import EmbeddedWorkerStopped, embedded_workers

    work = tmp_path / "exp"
    shutil.copytree(DEMO, work / "data")
    (work / "tiny").mkdir()
    (work / "tiny" / "config.json").write_text('{"model_type": "bert"}')  # never loaded: no training starts
    (work / "experiment.yaml").write_text(SPEC.format(backbone=work / "tiny").replace("sweep: {model.lora.r: [2, 4]}\n", ""))
    monkeypatch.chdir(work)
    settings = load_settings()
    # A worker for a queue none of the stages use, so that nothing runs: the stages stay queued.
    with embedded_workers([(["translate"], 1)]) as workers:
        experiment_id = submit(settings, work / "experiment.yaml")
        workers[0].stop(in_sighandler=False)
        workers[0].ended.wait()
        expected = rf"queues translate stopped .*experiment {experiment_id} cancelled, resume it with: relctl retry {experiment_id}"
        with pytest.raises(EmbeddedWorkerStopped, match=expected):
            watch_here(settings, experiment_id, workers)
    status = json.loads(relctl("status", str(experiment_id), "--json", env=relctl_env).stdout)
    assert status["status"] == "cancelled"
    assert {s["status"] for s in status["stages"]} == {"cancelled"}
