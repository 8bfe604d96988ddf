"""A finished small experiment that several test modules read: a LoRA-rank sweep of two runs beside both
baselines, on the demo's QC rows with a tiny backbone, in an embedded home of its own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support import relctl
from tests.tiny_model import build_tiny_backbone

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "data"

SPEC = """\
name: {name}
data:
  qc: {{train: data/qc_train.jsonl, test: data/qc_test.jsonl, max_rows: 200}}
split: {{strategy: category-aware, folds: 4, train_folds: [0, 1], seed: {seed}}}
model: {{backbone: {backbone}}}
train: {{epochs: 1, batch_size: 16, max_length: 32, lr: 1.0e-3}}
ensemble: {{method: vote}}
sweep: {{model.lora.r: [2, 4]}}
"""


def run_sweep(work: Path) -> tuple[dict[str, str], dict[str, int], Path]:
    from tests.conftest import model_store

    env = {"RELCTL_HOME": str(work / "home"), "RELCTL_MODEL_STORE": str(model_store())}
    shutil.copytree(DEMO, work / "data")
    build_tiny_backbone(work / "tiny", [work / "data" / "qc_train.jsonl"])
    (work / "experiment.yaml").write_text(SPEC.format(name="members", seed=42, backbone=work / "tiny"))
    done = relctl("run", "experiment.yaml", "--json", env=env, cwd=work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_ids = {row["run"]: row["run_id"] for row in json.loads(done.stdout)["rows"]}
    return env, run_ids, work


_OTHER_SPLIT: dict[str, int] = {}


def other_split_run(finished: tuple[dict[str, str], dict[str, int], Path]) -> int:
    """A model run of the same data split with another seed (other rows in each fold), run once."""
    env, _, work = finished
    if env["RELCTL_HOME"] not in _OTHER_SPLIT:
        spec = work / "other-split.yaml"
        spec.write_text(SPEC.format(name="other", seed=7, backbone=work / "tiny").replace("sweep: {model.lora.r: [2, 4]}\n", ""))
        other = relctl("run", str(spec), "--json", env=env, cwd=work)
        assert other.returncode == 0, other.stderr[-2000:]
        _OTHER_SPLIT[env["RELCTL_HOME"]] = next(r["run_id"] for r in json.loads(other.stdout)["rows"] if r["kind"] == "model")
    return _OTHER_SPLIT[env["RELCTL_HOME"]]
