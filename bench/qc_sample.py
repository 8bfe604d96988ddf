"""Benchmark: relctl's model against both baselines on the real QC sample, same folds, one run.

Runs `relctl run bench/qc_sample.yaml` in a fresh RELCTL_HOME (or `--home DIR`), then prints F1 at
0.5, F1 at the out-of-fold threshold and ROC-AUC of the model beside the lexical and "all relevant"
baselines, with the margins, as a Markdown table for bench/RESULTS.md; the raw leaderboard rows go
to bench/qc_sample.last.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SPEC = BENCH / "qc_sample.yaml"
RELCTL = str(Path(sys.executable).with_name("relctl"))
METRICS = ("f1@0.5", "f1@oof", "roc_auc", "pr_auc")


def main() -> int:
    # --home DIR re-uses a state folder: stages already computed there are served from the cache.
    home = Path(sys.argv[sys.argv.index("--home") + 1]) if "--home" in sys.argv else Path(tempfile.mkdtemp(prefix="relctl-bench-"))
    env = {**os.environ, "RELCTL_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.setdefault("RELCTL_MODEL_STORE", str(BENCH.parent / ".relctl" / "models"))
    started = time.monotonic()
    done = subprocess.run([RELCTL, "run", str(SPEC), "--json"], env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
        return done.returncode
    board = json.loads(done.stdout)
    rows = {r["run"]: r for r in board["rows"]}
    model = next(r for r in board["rows"] if r["kind"] == "model")
    lexical, everything = rows["baseline:lexical"], rows["baseline:all-relevant"]
    lines = [
        f"| {name} | {r['f1@0.5']:.4f} | {r['f1@oof']:.4f} ± {r['std']:.4f} | {r['roc_auc']:.4f} | {r['pr_auc']:.4f} |"
        for name, r in (("multilingual-e5-small + LoRA", model), ("lexical (TF-IDF + LR)", lexical), ("all relevant", everything))
    ]
    verdict = (
        f"ROC-AUC margin over lexical: {model['roc_auc'] - lexical['roc_auc']:+.4f}; "
        f"F1@oof margin over all relevant: {model['f1@oof'] - everything['f1@oof']:+.4f}; "
        f"folds: {model['folds']}; wall time: {wall / 60:.1f} min"
    )
    print("| run | F1@0.5 | F1@oof (mean ± std) | ROC-AUC | PR-AUC |\n|---|---|---|---|---|")
    print("\n".join(lines))
    print(verdict)
    (BENCH / "qc_sample.last.json").write_text(json.dumps({"rows": [model, lexical, everything], "wall_seconds": wall}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
